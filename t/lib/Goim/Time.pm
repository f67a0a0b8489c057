package Goim::Time;

# How ngx_goim's tests wait: for the event they check, never for a guessed
# time.  A deadline is how long a test is willing to wait for an event
# before it calls it missing; it says nothing about how fast the event
# should be, so it is generous and scaled for slow runs.  Where the time
# itself is what a test checks (an answer within an RPC timeout, a
# renewal within its period), the bound is scaled too, and measured on the
# event, not on the test's own polling.
#
#   Goim::Time::scale()              1; 4 with sanitizers (make test
#                                    SANITIZE=1 sets GOIM_SANITIZE), 8 with
#                                    nginx under valgrind
#                                    (TEST_NGINX_USE_VALGRIND);
#                                    $ENV{GOIM_TIME_SCALE} overrides both
#   Goim::Time::scaled($s)           $s * scale()
#   Goim::Time::wait_until($code, $timeout, $step)
#                                    calls $code every $step s (0.05)
#                                    until it returns true, for at most
#                                    scaled($timeout) s (10); returns the
#                                    last value
#   Goim::Time::log_time($line)      the time of a "2026/12/02 06:20:11.140"
#                                    or "2026/12/02 06:20:11" log line, as
#                                    an epoch (fractional when it has ms)

use strict;
use warnings;

use Time::HiRes qw(sleep time);
use Time::Local qw(timelocal);

sub scale {
    return $ENV{GOIM_TIME_SCALE} if $ENV{GOIM_TIME_SCALE};
    return 8 if $ENV{TEST_NGINX_USE_VALGRIND};
    return 4 if $ENV{GOIM_SANITIZE};
    return 1;
}

sub scaled { $_[0] * scale() }

sub wait_until {
    my ($code, $timeout, $step) = @_;
    my $deadline = time + scaled($timeout // 10);
    while (1) {
        my $v = $code->();
        return $v if $v || time > $deadline;
        sleep($step // 0.05);
    }
}

sub log_time {
    my $line = shift;
    return undef unless defined $line
        && $line =~ m{^(\d{4})/(\d\d)/(\d\d) (\d\d):(\d\d):(\d\d)(\.\d+)?};
    return timelocal($6, $5, $4, $3, $2 - 1, $1) + ($7 // 0);
}

1;

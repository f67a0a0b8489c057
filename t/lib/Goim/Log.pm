package Goim::Log;

# The test nginx's error log, read while a block runs (--- error_log only
# checks it after the request):
#
#   Goim::Log::text()                   all of it so far ('' if none)
#   Goim::Log::wait_for(qr/.../, $s)    true once it matches, false when
#                                       $s seconds passed (the caller
#                                       scales $s for slow runs)

use strict;
use warnings;

use Test::Nginx::Socket ();
use Time::HiRes qw(time);

sub text {
    my $f = Test::Nginx::Socket::server_root() . '/logs/error.log';
    open my $fh, '<', $f or return '';
    local $/;
    return scalar <$fh>;
}

sub wait_for {
    my ($re, $timeout) = @_;
    my $deadline = time + $timeout;
    while (time < $deadline) {
        return 1 if text() =~ $re;
        select undef, undef, undef, 0.05;
    }
    return 0;
}

1;

# SSE with two workers: pushes by mid and by room reach SSE clients on
# every worker, a control call answered by another worker than the one
# holding the stream is applied by that one (through its ring), and a
# reload closes SSE clients (logged), which come back with Last-Event-ID.
# The SSE server listens with reuseport so the kernel spreads the clients.
use strict;
use warnings;

use Goim::Workers;
use Test::Nginx::Socket 'no_plan';
use Goim::Stack;
use Goim::Daemon;
use Goim::Log;
use Goim::Reload;
use Goim::Sse;
use Goim::Time;
use JSON::PP;

master_on();
workers(2);

our @Mids = (7801 .. 7810);
our %S;

$ENV{TEST_NGINX_SSE_PORT} ||= Goim::Daemon::free_port();

sub token {
    my $mid = shift;
    return qq({"mid":$mid,"key":"sse-$mid","room_id":"live://780","accepts":[1000],"recover":true});
}

sub subscribe {
    for my $mid (@Mids) {
        my $s = Goim::Sse->new(token => token($mid), port => $ENV{TEST_NGINX_SSE_PORT});
        $s->session or die "sse-$mid: no session\n";
        $S{$mid} = $s;
    }
}

# the SSE clients really are spread: their auths were logged by both workers
sub spread {
    my %pids;
    my $log = Goim::Log::text();
    $pids{$1}++ while $log =~ /\[debug\] (\d+)#\d+: \*\d+ goim comet: mid 78\d\d key/g;
    return scalar keys %pids;
}

Goim::Workers::reuseport();
Goim::Stack::setup();
$Goim::Stack::MainConfig =~ s/^(\s*goim_comet_id [^;]*;)/$1
    goim_comet_room_history 50;
    goim_comet_room_history_ttl 1h;/m;
our $HttpConfig = <<'_EOC_';
    server {
        listen 127.0.0.1:$TEST_NGINX_SSE_PORT reuseport;

        location = /sse {
            goim_comet_sse;
        }

        location = /sse/control {
            goim_comet_sse_control;
        }
    }
_EOC_
Test::Nginx::Socket::add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('http_config', $HttpConfig) unless defined $block->http_config;
});
run_tests();
Goim::Stack::teardown();

__DATA__

=== TEST 1: pushes by mid and to the room reach SSE clients on both workers
--- init
main::subscribe();
Test::More::is(main::spread(), 2, 'the clients are on both workers');
Goim::Stack::push('/goim/push/mids?operation=1000&mids=' . join(',', @main::Mids), 'by mid');
Goim::Stack::push('/goim/push/room?operation=1000&type=live&room=780', 'to the room');
for my $mid (@main::Mids) {
    my @e = map { $main::S{$mid}->event_op(1000) } 1 .. 2;
    Test::More::is(join(' ', map { $_ ? $_->{data} : 'none' } @e), 'by mid to the room', "sse-$mid got both");
}
--- request
GET /status
--- response_body_like chomp
"workers":2,.*"sse":\{"connections":10,



=== TEST 2: control calls land on either worker; the one holding the stream applies them
--- init
main::subscribe();
my $cross = 0;
for my $round (1 .. 20) {
    for my $mid (@main::Mids) {
        my ($st, $j) = Goim::Sse::control($main::S{$mid}->session, 14, "2000,$round",
                                          port => $ENV{TEST_NGINX_SSE_PORT});
        die "sse-$mid: control $st\n" unless $st == 202;
        my $e = $main::S{$mid}->event_op(15) or die "sse-$mid: no op 15 in round $round\n";
        die "sse-$mid: op 15 says $e->{data}\n" unless $e->{data} eq "2000,$round";
    }
    $cross = () = Goim::Log::text() =~ /goim comet: control call for key "sse-78\d\d" sent to worker/g;
    last if $cross >= 2;
}
Test::More::cmp_ok($cross, '>=', 2, "control calls went across workers ($cross)");
Goim::Stack::push('/goim/push/mids?operation=2000&mids=' . join(',', @main::Mids), 'subbed');
for my $mid (@main::Mids) {
    my $e = $main::S{$mid}->event_op(2000);
    Test::More::is($e ? $e->{data} : 'none', 'subbed', "sse-$mid accepts op 2000 now");
}
my ($st, $j) = Goim::Sse::control($main::S{7801}->session, 12, 'live://781',
                                  port => $ENV{TEST_NGINX_SSE_PORT});
Test::More::is($st, 202, 'op 12: 202');
Test::More::is($main::S{7801}->event_op(13)->{data}, 'live://781', 'op 13 on the stream');
--- request
GET /status
--- response_body_like chomp
"sse":\{"connections":10,.*"control_refused":0\}



=== TEST 3: a reload closes SSE clients with a logged reason; back with Last-Event-ID they get what was pushed meanwhile
--- init
main::subscribe();
Goim::Stack::push('/goim/push/room?operation=1000&type=live&room=780', 'before');
my %last;
for my $mid (@main::Mids) {
    my $e = $main::S{$mid}->event_op(1000) or die "sse-$mid: no push before the reload\n";
    $last{$mid} = $e->{id};
}
Goim::Reload::reload();
for my $mid (@main::Mids) {
    Test::More::ok($main::S{$mid}->closed(10), "sse-$mid closed by the reload");
}
Goim::Stack::push('/goim/push/room?operation=1000&type=live&room=780', 'meanwhile');
for my $mid (@main::Mids) {
    my $s = Goim::Sse->new(token => main::token($mid), port => $ENV{TEST_NGINX_SSE_PORT},
                           last_event_id => $last{$mid});
    my $e = $s->event_op(1000);
    Test::More::is($e ? $e->{data} : 'none', 'meanwhile', "sse-$mid got the push it missed");
    $main::S{$mid} = $s;
}
--- request
GET /status
--- response_body_like chomp
"sse":\{"connections":10,
--- error_log
closing: worker is shutting down

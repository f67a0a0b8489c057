# Long-polls with two workers: each poll comes on a new connection, so
# the kernel (reuseport) spreads them over both workers; one that lands on
# the worker not holding its session is sent there through its ring and
# answered back the same way, held or at once.  A reload closes the
# sessions: the next poll gets 404, and the client opens again with its
# last event id (room recovery).
use strict;
use warnings;

use Goim::Workers;
use Test::Nginx::Socket 'no_plan';
use Goim::Stack;
use Goim::Daemon;
use Goim::Log;
use Goim::Poll;
use Goim::Reload;
use Goim::Sse;
use Goim::Time;
use JSON::PP;

master_on();
workers(2);

our @Mids = (8001 .. 8008);
our %P;

$ENV{TEST_NGINX_POLL_PORT} ||= Goim::Daemon::free_port();

sub token {
    my $mid = shift;
    return qq({"mid":$mid,"key":"poll-$mid","room_id":"live://800","accepts":[1000],"recover":true});
}

sub open_all {
    for my $mid (@Mids) {
        my $p = Goim::Poll->new(token => token($mid), port => $ENV{TEST_NGINX_POLL_PORT});
        die "poll-$mid: open " . ($p->open_answer ? $p->open_answer->{status} : 'none') . "\n"
            unless $p->session;
        $P{$mid} = $p;
    }
}

# polls that went to the other worker so far
sub crossed {
    my @l = Goim::Log::text() =~ /poll of key "poll-80\d\d" sent to worker/g;
    return scalar @l;
}

Goim::Workers::reuseport();
Goim::Stack::setup();
$Goim::Stack::MainConfig =~ s/^(\s*goim_comet_id [^;]*;)/$1
    goim_comet_room_history 50;
    goim_comet_room_history_ttl 1h;/m;
our $HttpConfig = <<'_EOC_';
    server {
        listen 127.0.0.1:$TEST_NGINX_POLL_PORT reuseport;

        location = /poll {
            goim_comet_poll;
            goim_comet_poll_timeout 10s;
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

=== TEST 1: polls on new connections land on both workers; each gets its session's pushes, held or at once, whoever holds the session
--- init
main::open_all();
for my $round (1 .. 6) {
    Goim::Stack::push('/goim/push/mids?operation=1000&mids=' . join(',', @main::Mids), "by mid $round");
    Goim::Stack::push('/goim/push/room?operation=1000&type=live&room=800', "room $round");
    for my $mid (@main::Mids) {
        my $p = $main::P{$mid};
        my $got = '';
        Goim::Time::wait_until(sub {
            $p->reconnect;
            my $a = $p->poll or die "poll-$mid: no answer in round $round\n";
            die "poll-$mid: $a->{status} in round $round\n" unless $a->{status} == 200;
            $got .= join(' ', map { $_->{data} } grep { ($_->{op} // 0) == 1000 } @{$a->{events}}) . ' ';
            $got =~ /by mid $round .*room $round|room $round .*by mid $round/;
        }) or die "poll-$mid: round $round got [$got]\n";
    }
    last if $round >= 2 && main::crossed() >= 4;
}
Test::More::cmp_ok(main::crossed(), '>=', 4, 'polls went across workers (' . main::crossed() . ')');
Test::More::pass('every session got every push');
--- request
GET /status
--- response_body_like chomp
"workers":2,"connections":\{"tcp":0,"ws":0,"poll":8,"online":8\},



=== TEST 2: a poll held by the other worker's session is answered by a push; a control call landing anywhere applies there
--- init
main::open_all();
my $cross = 0;
for my $try (1 .. 40) {
    my $mid = $main::Mids[$try % @main::Mids];
    my $p = $main::P{$mid};
    $p->reconnect;
    my $n = main::crossed();
    $p->send_poll;
    Goim::Time::wait_until(sub { Goim::Log::text() =~ /poll of key "poll-$mid" (held|sent)/ }) or die "no poll\n";
    Goim::Stack::push("/goim/push/mids?operation=1000&mids=$mid", "held $try");
    my $a = $p->answer or die "poll-$mid: no answer\n";
    my ($e) = grep { ($_->{data} // '') eq "held $try" } @{$a->{events}};
    Goim::Time::wait_until(sub {
        return 1 if $e;
        $a = $p->poll;
        ($e) = grep { ($_->{data} // '') eq "held $try" } @{$a->{events}};
        $e;
    }) or die "poll-$mid: the push never came\n";
    $cross++ if main::crossed() > $n;
    last if $cross >= 2;
}
Test::More::cmp_ok($cross, '>=', 2, "pushes answered polls held across workers ($cross)");
my $p = $main::P{8001};
my ($st) = Goim::Sse::control($p->session, 12, 'live://801', port => $ENV{TEST_NGINX_POLL_PORT});
Test::More::is($st, 202, 'op 12: 202');
my $got;
Goim::Time::wait_until(sub {
    $p->reconnect;
    ($got) = grep { ($_->{op} // 0) == 13 } @{$p->poll->{events}};
    $got;
}) or die "no op 13\n";
Test::More::is($got->{data}, 'live://801', 'op 13 in a poll');
--- request
GET /status
--- response_body_like chomp
"poll":\{"sessions":8,



=== TEST 3: clients that give up on held polls (the socket closed, here or across workers) leave nothing behind: the sessions still answer, nothing is logged above info
--- init
main::open_all();
for my $round (1 .. 5) {
    for my $mid (@main::Mids) {
        my $p = $main::P{$mid};
        $p->reconnect;
        $p->send_poll;
    }
    Goim::Time::wait_until(sub {
        my $n = () = Goim::Log::text() =~ /poll of key "poll-80\d\d" held/g;
        $n >= 8 * $round;
    }) or die "round $round: not every poll held\n";
    # gone without reading their answers
    $main::P{$_}->close for @main::Mids;
}
Goim::Stack::push('/goim/push/mids?operation=1000&mids=' . join(',', @main::Mids), 'after');
for my $mid (@main::Mids) {
    my $p = $main::P{$mid};
    my $e;
    Goim::Time::wait_until(sub {
        $p->reconnect;
        my $a = $p->poll or return 0;
        ($e) = grep { ($_->{data} // '') eq 'after' } @{$a->{events}};
        $e;
    });
    Test::More::ok($e, "poll-$mid: still served");
}
--- request
GET /status
--- response_body_like chomp
"poll":\{"sessions":8,



=== TEST 4: a reload closes the sessions (logged, counted as drained): their next poll gets 404; opened again with the last event id, they get what was pushed meanwhile
--- init
main::open_all();
Goim::Stack::push('/goim/push/room?operation=1000&type=live&room=800', 'before');
my %last;
for my $mid (@main::Mids) {
    my $e;
    Goim::Time::wait_until(sub {
        ($e) = grep { ($_->{data} // '') eq 'before' } @{$main::P{$mid}->poll->{events}};
        $e;
    }) or die "poll-$mid: no push before the reload\n";
    $last{$mid} = $e->{id};
}
# one poll held as the reload comes, on whichever worker
my $h = $main::P{8001};
$h->reconnect;
my $held = () = Goim::Log::text() =~ /poll of key "poll-8001" held/g;
$h->send_poll;
Goim::Time::wait_until(sub { my $n = () = Goim::Log::text() =~ /poll of key "poll-8001" held/g; $n > $held })
    or die "poll-8001: not held\n";
Goim::Reload::reload();
my $ha = $h->answer(10);
Test::More::is($ha && $ha->{status}, 404, 'the poll held across the reload: 404');
Test::More::like($ha && $ha->{json}{message}, qr/authenticate again/, '... authenticate again');
Goim::Stack::push('/goim/push/room?operation=1000&type=live&room=800', 'meanwhile');
for my $mid (@main::Mids) {
    my $p = $main::P{$mid};
    $p->reconnect;
    my $a = $p->poll;
    Test::More::is($a && $a->{status}, 404, "poll-$mid: 404 after the reload");
    my $b;
    my $e;
    Goim::Time::wait_until(sub {
        $b = Goim::Poll->new(token => main::token($mid), port => $ENV{TEST_NGINX_POLL_PORT},
                             last_event_id => $last{$mid});
        ($e) = grep { ($_->{data} // '') eq 'meanwhile' } @{$b->open_answer->{events}};
        $e;
    });
    Test::More::is($e ? $e->{data} : 'none', 'meanwhile', "poll-$mid got the push it missed");
    $main::P{$mid} = $b;
}
--- request
GET /status
--- response_body_like chomp
"handoff":\{"handed_off":0,"adopted":0,"drained":([89]|[1-9]\d+),
--- error_log
closing: worker is shutting down
--- no_error_log
[alert]
[crit]

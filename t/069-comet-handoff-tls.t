# TLS clients across a reload: their session keys live in the old
# worker, so they are drained instead of handed off (goim over TLS closed,
# wss with 1001), each at a random moment of goim_comet_drain_window, and
# reconnect; plain clients beside them stay.  What the documentation
# promises: a push delivered before the reload is received before the
# close, one made after the reconnect arrives; the plain client gets every
# push once.
use strict;
use warnings;

use Goim::Workers;
use File::Temp qw(tempdir);
use Test::Nginx::Socket 'no_plan';
use Goim::Stack;
use Goim::Client;
use Goim::Daemon;
use Goim::Reload;
use Goim::Time;
use HTTP::Tiny;
use JSON::PP;
use Time::HiRes qw(time);

BEGIN {
    my $dir = tempdir(CLEANUP => 1);
    system("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost "
           . "-keyout $dir/key.pem -out $dir/cert.pem >/dev/null 2>&1") == 0
        or die "openssl could not make a certificate\n";
    $ENV{TEST_NGINX_CERT_DIR} = $dir;
    # distinct from each other and from the stack's own (a port picked
    # twice before anything listens would clash)
    my %taken = (Test::Nginx::Socket::server_port() => 1);
    for my $name (qw(TLS WSS COMET PUSH LOGIC)) {
        my $port;
        do { $port = Goim::Daemon::free_port() } while $taken{$port}++;
        $ENV{"TEST_NGINX_${name}_PORT"} = $port;
    }
}

master_on();
workers(2);

our $Window = 2;

add_block_preprocessor(sub {
    my $block = shift;
    (my $main = $Goim::Stack::MainConfig) =~ s{(\n    stream \{\n)}{$1
        server {
            listen 127.0.0.1:\$TEST_NGINX_TLS_PORT ssl;
            ssl_certificate \$TEST_NGINX_CERT_DIR/cert.pem;
            ssl_certificate_key \$TEST_NGINX_CERT_DIR/key.pem;
            goim_comet;
        }
};
    $main =~ s/^(\s*goim_comet_id [^;]*;)/$1\n    goim_comet_drain_window ${Window}s;/m;
    $block->set_value('main_config', $main);
    $block->set_value('http_config', <<'_EOC_');
    server {
        listen 127.0.0.1:$TEST_NGINX_WSS_PORT ssl;
        ssl_certificate $TEST_NGINX_CERT_DIR/cert.pem;
        ssl_certificate_key $TEST_NGINX_CERT_DIR/key.pem;

        location = /sub {
            goim_comet_ws;
        }
    }
_EOC_
});

sub status {
    my $res = HTTP::Tiny->new(timeout => Goim::Time::scaled(5))->get(
        'http://127.0.0.1:' . Test::Nginx::Socket::server_port() . '/status');
    return $res->{success} ? decode_json($res->{content}) : {};
}

sub bodies {
    my ($c, $n) = @_;
    my @got;
    while (@got < $n && (my $p = $c->read_packet(Goim::Time::scaled(5)))) {
        push @got, $p->{body} if $p->{op} == 1000;
    }
    return join ' ', @got;
}

Goim::Stack::setup();
run_tests();
Goim::Stack::teardown();

__DATA__

=== TEST 1: TLS clients are drained over the window and reconnect; the plain one stays
--- init
my %tls = (tls => [tls => 1, port => $ENV{TEST_NGINX_TLS_PORT}],
           wss => [tls => 1, transport => 'ws', port => $ENV{TEST_NGINX_WSS_PORT}]);
my $mid = 6900;
for my $name (sort keys %tls) {
    $mid++;
    Goim::Stack::client($name, qq({"mid":$mid,"room_id":"live://69","accepts":[1000]}), 1,
                        @{$tls{$name}});
}
Goim::Stack::client('plain', '{"mid":6909,"room_id":"live://69","accepts":[1000]}', 1);

Goim::Stack::push('/goim/push/room?operation=1000&type=live&room=69', 'before') == 1
    or die "push failed\n";
for my $name (qw(tls wss plain)) {
    Test::More::is(main::bodies($Goim::Stack::Clients{$name}{client}, 1), 'before',
                   "$name gets the push made before the reload");
}

my $t0 = time;
Goim::Reload::hup();
for my $name (sort keys %tls) {
    my $c = $Goim::Stack::Clients{$name}{client};
    Test::More::ok($c->wait_closed(Goim::Time::scaled($main::Window + 10)), "$name is drained");
    Test::More::ok(time - $t0 <= Goim::Time::scaled($main::Window + 5),
                   "$name: within the drain window");
}
Test::More::is($Goim::Stack::Clients{wss}{client}->close_status, 1001, 'wss: closed with 1001');

# they reconnect, as goim.js and goim-cli do
$mid = 6900;
for my $name (sort keys %tls) {
    $mid++;
    Goim::Stack::client($name, qq({"mid":$mid,"room_id":"live://69","accepts":[1000]}), 1,
                        @{$tls{$name}});
    Test::More::ok($Goim::Stack::Clients{$name}{auth}, "$name reconnected");
}
Goim::Time::wait_until(sub { main::status()->{handoff}{handed_off} >= 1 }, 10);
Goim::Stack::push('/goim/push/room?operation=1000&type=live&room=69', 'after') == 1
    or die "push failed\n";
Goim::Stack::push('/goim/push/mids?operation=1000&mids=6901&mids=6902&mids=6909', 'mid') == 1
    or die "push failed\n";
for my $name (qw(tls wss plain)) {
    Test::More::is(join(' ', sort split / /, main::bodies($Goim::Stack::Clients{$name}{client}, 2)),
                   'after mid', "$name gets the pushes made after the reconnect");
}
my $plain = $Goim::Stack::Clients{plain}{client};
Test::More::ok(!$plain->eof && !$plain->read_packet(0.3), 'plain: stayed, nothing twice');
my $st = main::status();
Test::More::ok($st->{handoff}{drained} >= 2, "drained: $st->{handoff}{drained}");
Test::More::is($st->{handoff}{handed_off}, 1, 'handed off: the plain client');
Test::More::is($st->{connections}{online}, 3, 'online: three');
--- request
GET /status
--- response_body_like chomp
"handoff":\{"handed_off":1,
--- no_error_log
[alert]
[crit]
[emerg]

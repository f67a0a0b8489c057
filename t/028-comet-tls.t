# TLS from NGINX's own listen ... ssl: goim over TLS on TCP (goim has none)
# and wss, with a certificate made for this run.
use strict;
use warnings;

use File::Temp qw(tempdir);
use Test::Nginx::Socket 'no_plan';
use Goim::Stack;
use Goim::Client;
use Goim::Daemon;
use Goim::Time;

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

our $Token = '{"mid":800,"room_id":"live://80","accepts":[1000]}';

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
    # as the stack's own listeners: slow runs get longer to authenticate
    $block->set_value('http_config', $block->http_config
        . '    goim_comet_handshake_timeout ' . int(Goim::Time::scaled(5)) . "s;\n")
        if Goim::Time::scale() > 1;
});

Goim::Stack::setup();
run_tests();
Goim::Stack::teardown();

__DATA__

=== TEST 1: goim over TLS on TCP: auth, then a push by mid
--- init
Goim::Stack::client('tls', $main::Token, 3, tls => 1, port => $ENV{TEST_NGINX_TLS_PORT});
--- request
POST /goim/push/mids?operation=1000&mids=800
over tls
--- response_body
{"code":0,"message":""}
--- goim_auth
tls op=8 seq=3 ver=1 body={"mid":800,"key":"<uuid>","room_id":"live://80"}
--- goim_receive
tls op=1000 seq=0 ver=1 body=over tls



=== TEST 2: wss: auth, heartbeat and a room push over TLS
--- init
my $c = Goim::Stack::client('wss', $main::Token, 4, transport => 'ws', tls => 1,
                            port => $ENV{TEST_NGINX_WSS_PORT});
$c->send_packet(1, 2, 5, '');
--- request
POST /goim/push/room?operation=1000&type=live&room=80
over wss
--- response_body
{"code":0,"message":""}
--- goim_auth
wss op=8 seq=4 ver=1 body={"mid":800,"key":"<uuid>","room_id":"live://80"}
--- goim_receive
wss op=3 seq=5 ver=1 body=\x00\x00\x00\x01
wss op=1000 seq=0 ver=1 body=over wss

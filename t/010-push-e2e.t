# One push end to end through all four parts: a goim client on comet's TCP
# listener authenticates (comet -> logic -> router), a business pushes over
# logic's HTTP API (logic -> router -> job -> comet), the client receives it.
use strict;
use warnings;

use Test::Nginx::Socket 'no_plan';
use Goim::Stream;
use Goim::Daemon;
use Goim::Client;

our $Router = Goim::Daemon->start('router');
our $Job = Goim::Daemon->start('job');

$ENV{TEST_NGINX_COMET_PORT} = Goim::Daemon::free_port();
$ENV{TEST_NGINX_PUSH_PORT} = Goim::Daemon::free_port();
$ENV{TEST_NGINX_LOGIC_PORT} = Goim::Daemon::free_port();

our $MainConfig = <<'_EOC_';
    goim_comet_id comet-e2e;
    goim_comet_logic 127.0.0.1:$TEST_NGINX_LOGIC_PORT;
    goim_logic_router 127.0.0.1:$TEST_NGINX_ROUTER_PORT;
    goim_logic_job 127.0.0.1:$TEST_NGINX_JOB_PORT;

    stream {
        server {
            listen 127.0.0.1:$TEST_NGINX_COMET_PORT;
            goim_comet;
        }

        server {
            listen 127.0.0.1:$TEST_NGINX_PUSH_PORT;
            goim_comet_push;
        }

        server {
            listen 127.0.0.1:$TEST_NGINX_LOGIC_PORT;
            goim_logic_rpc;
        }
    }
_EOC_

our $Config = <<'_EOC_';
    location /goim/ {
        goim_logic_api;
    }
_EOC_

our %Clients;

sub client {
    my ($name, $token, $seq) = @_;
    my $c = Goim::Client->new('127.0.0.1', $ENV{TEST_NGINX_COMET_PORT}, 5);
    $Clients{$name} = { client => $c, auth => $c->auth($token, $seq) };
    return $c;
}

sub describe {
    my $p = shift;
    return 'none' unless $p;
    return "op=$p->{op} seq=$p->{seq} ver=$p->{ver} body=$p->{body}";
}

# --- goim_auth NAME: what client NAME got for its auth
# --- goim_receive NAME: the packets NAME receives next ("none": nothing
#     within half a second)
add_response_body_check(sub {
    my ($block) = @_;
    my $name = $block->name;

    if (defined(my $spec = $block->goim_auth)) {
        my ($who, $want) = split /\s+/, $spec, 2;
        is(describe($Clients{$who}{auth}), $want, "$name - $who auth reply");
    }

    if (defined(my $spec = $block->goim_receive)) {
        for my $line (split /\n/, $spec) {
            my ($who, $want) = split /\s+/, $line, 2;
            my $got = $Clients{$who}{client}->read_packet($want eq 'none' ? 0.5 : 3);
            is(describe($got), $want, "$name - $who receives");
        }
    }
});

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('main_config', $MainConfig) unless defined $block->main_config;
    $block->set_value('config', $Config) unless defined $block->config;
    $block->set_value('no_error_log', "[error]\n[alert]\n[crit]")
        unless defined $block->no_error_log || defined $block->error_log;
});

no_shuffle();
no_root_location();
run_tests();

$Job->stop;
$Router->stop;

__DATA__

=== TEST 1: auth through logic, then a push by mid reaches the client
--- init
main::client('c1', '{"mid":123,"room_id":"live://1000","platform":"web","accepts":[1000]}', 7);
--- request
POST /goim/push/mids?operation=1000&mids=123
hello
--- response_body
{"code":0,"message":""}
--- goim_auth
c1 op=8 seq=7 ver=1 body=
--- goim_receive
c1 op=1000 seq=0 ver=1 body=hello



=== TEST 2: an operation the client did not accept is not delivered
--- init
main::client('c2', '{"mid":124,"platform":"web","accepts":[1000]}', 1);
--- request
POST /goim/push/mids?operation=1001&mids=124
not for you
--- response_body
{"code":0,"message":""}
--- goim_receive
c2 none



=== TEST 3: a push by key, the key chosen by the client
--- init
main::client('c3', '{"mid":125,"key":"key-125-a","accepts":[1000,1002]}', 1);
--- request
POST /goim/push/keys?operation=1002&keys=key-125-a
by key
--- response_body
{"code":0,"message":""}
--- goim_receive
c3 op=1002 seq=0 ver=1 body=by key



=== TEST 4: every device of a mid gets a push by mid
--- init
main::client('d1', '{"mid":200,"accepts":[1000]}', 1);
main::client('d2', '{"mid":200,"accepts":[1000]}', 1);
--- request
POST /goim/push/mids?operation=1000&mids=200
to all devices
--- response_body
{"code":0,"message":""}
--- goim_receive
d1 op=1000 seq=0 ver=1 body=to all devices
d2 op=1000 seq=0 ver=1 body=to all devices



=== TEST 5: a push to a mid nobody is connected as succeeds and sends nothing
--- request
POST /goim/push/mids?operation=1000&mids=999999
nobody
--- response_body
{"code":0,"message":""}



=== TEST 6: a token that is not JSON is refused and the client closed
--- init
main::client('bad', 'not json', 3);
--- request
POST /goim/push/mids?operation=1000&mids=1
x
--- response_body
{"code":0,"message":""}
--- goim_auth
bad none
--- error_log
auth from 127.0.0.1 refused: token is not valid JSON
--- no_error_log
[error]



=== TEST 7: bad push requests get a 4xx with a JSON reason
--- request
POST /goim/push/mids?operation=1000&mids=abc
x
--- error_code: 400
--- response_body
{"code":-400,"message":"mids holds \"abc\", not an int64"}

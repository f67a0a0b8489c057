# The modules linked statically into nginx (config honours --add-module):
# the whole stack on the binary scripts/build-static.sh makes (`make
# static`; `make test` makes it first), nothing loaded with load_module.
# Skipped, with the reason, when that binary is absent.
use strict;
use warnings;
use Cwd qw(abs_path);

BEGIN {
    my $nginx = $ENV{GOIM_STATIC_NGINX}
                || 'build/static/nginx-1.22.1/objs/nginx';
    unless (-x $nginx) {
        require Test::More;
        Test::More::plan(skip_all => "no static nginx at $nginx:"
                                     . " make static builds it");
    }
    $ENV{TEST_NGINX_BINARY} = abs_path($nginx);
    $ENV{TEST_NGINX_LOAD_MODULES} = '';
}

use Test::Nginx::Socket 'no_plan';
use Goim::Stack;

Goim::Stack::setup();
run_tests();
Goim::Stack::teardown();

__DATA__

=== TEST 1: the binary carries both modules, linked in
--- init
my $v = `$ENV{TEST_NGINX_BINARY} -V 2>&1`;
die "not a static goim build:\n$v" unless $v =~ /--add-module=\S+/
    && $v !~ /--add-dynamic-module/;
--- request
GET /status
--- response_body_like: ^\{"id":"comet-test","workers":1,"connections":
--- error_code: 200



=== TEST 2: a TCP client authenticates through logic and gets a push by mid
--- init
Goim::Stack::client('c1', '{"mid":301,"room_id":"live://3","accepts":[1000]}', 7);
--- request
POST /goim/push/mids?operation=1000&mids=301
static
--- response_body
{"code":0,"message":""}
--- goim_auth
c1 op=8 seq=7 ver=1 body={"mid":301,"key":"<uuid>","room_id":"live://3"}
--- goim_receive
c1 op=1000 seq=0 ver=1 body=static



=== TEST 3: a WebSocket client gets a push to its room
--- init
Goim::Stack::client('w1', '{"mid":302,"room_id":"live://4","accepts":[1000]}', 1, transport => 'ws');
--- request
POST /goim/push/room?operation=1000&type=live&room=4
to the room
--- response_body
{"code":0,"message":""}
--- goim_receive
w1 op=1000 seq=0 ver=1 body=to the room

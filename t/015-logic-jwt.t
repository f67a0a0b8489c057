# Real auth, which goim lacks: with goim_logic_jwt_secret_file the auth body
# must be an HS256 JWT signed with that secret, carrying mid (and room,
# accepts, key) as claims.
use strict;
use warnings;

use Test::Nginx::Socket 'no_plan';
use Goim::Stack;
use Goim::Client;
use Goim::Jwt;

Goim::Jwt::setup();
Goim::Stack::setup();
run_tests();
Goim::Stack::teardown();

__DATA__

=== TEST 1: a valid token: the client is in as its claims say, and pushes reach it
--- init
my $exp = time + 60;
Goim::Stack::client('ok', Goim::Jwt::token(sprintf('{"mid":1500,"room_id":"live://15","accepts":[1000],"exp":%d}', $exp)), 1);
--- request
POST /goim/push/mids?operation=1000&mids=1500
signed
--- response_body
{"code":0,"message":""}
--- goim_auth
ok op=8 seq=1 ver=1 body={"mid":1500,"key":"<uuid>","room_id":"live://15"}
--- goim_receive
ok op=1000 seq=0 ver=1 body=signed



=== TEST 2: expired, not yet valid, wrong secret, wrong algorithm, no mid, not a JWT: all refused
--- init
my $now = time;
Goim::Stack::client('expired', Goim::Jwt::token(sprintf('{"mid":1,"exp":%d}', $now - 10)), 1);
Goim::Stack::client('early', Goim::Jwt::token(sprintf('{"mid":2,"nbf":%d}', $now + 600)), 1);
Goim::Stack::client('forged', Goim::Jwt::token('{"mid":3}', secret => 'not-the-secret'), 1);
Goim::Stack::client('hs512', Goim::Jwt::token('{"mid":4}', header => '{"alg":"HS512","typ":"JWT"}'), 1);
Goim::Stack::client('none', Goim::Jwt::token('{"mid":5}', header => '{"alg":"none"}'), 1);
Goim::Stack::client('nomid', Goim::Jwt::token('{"room_id":"live://1"}'), 1);
Goim::Stack::client('json', '{"mid":6,"accepts":[1000]}', 1);
--- request
GET /goim/x
--- error_code: 404
--- goim_auth
expired none
early none
forged none
hs512 none
none none
nomid none
json none
--- error_log
refused: JWT has expired
refused: JWT is not valid yet
refused: JWT signature does not match
refused: JWT algorithm is not HS256
refused: JWT has no mid claim
refused: token is not a JWT
--- no_error_log
[alert]
[crit]

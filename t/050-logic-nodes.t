# GET /goim/nodes/weighted and /goim/nodes/instances: the comet registry
# of router weighted as goim's load balancer does (reference §3.6), the
# other NodesReply fields from goim_logic_node_* directives.  The comets
# besides the test nginx's are registered straight in router.
use strict;
use warnings;

use Test::Nginx::Socket 'no_plan';
use Goim::Stack;
use Goim::Time;
use Goim::RouterRpc;
use HTTP::Tiny;

sub renew { Goim::RouterRpc::comet_renew($ENV{TEST_NGINX_ROUTER_PORT}, @_) }

# three comets: c2 is empty, c3 weighs twice as much and sits in "sh"
sub three {
    renew(id => 'c1', weight => 10, conn_count => 100, addrs => ['1.1.1.1']);
    renew(id => 'c2', weight => 10, addrs => ['2.2.2.2', '2.2.2.3']);
    renew(id => 'c3', weight => 20, conn_count => 150, addrs => ['3.3.3.3'],
          region => 'sh', ip_count => 7);
    renew(id => 'c9', weight => 50, addrs => ['9.9.9.9'], offline => 1);
}

# until the comets' registrations match re (the test nginx's comet renews
# a moment after it starts)
sub wait_instances {
    my $re = shift;
    my $url = 'http://127.0.0.1:' . Test::Nginx::Socket::server_port() . '/goim/nodes/instances';
    return Goim::Time::wait_until(sub {
        HTTP::Tiny->new(timeout => Goim::Time::scaled(3))->get($url)->{content} =~ $re;
    }, 10, 0.1) ? 1 : 0;
}

# the test nginx's comet weighs nothing and has no address: always last
$Goim::Stack::MainConfig =~ s/(goim_comet_id comet-test;)/$1\n    goim_comet_weight 0;/;

our $HttpConfig = <<'_EOC_';
    goim_logic_node_domain conn.goim.io;
    goim_logic_node_host_domain .goim.io;
    goim_logic_node_ports 3101 3102 3103;
    goim_logic_backoff 300 3 1.8 0.3;
    goim_logic_region_weight 1.6;
    goim_logic_client_region $http_x_region;
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('http_config', $HttpConfig) unless defined $block->http_config;
});

Goim::Stack::setup();
run_tests();
Goim::Stack::teardown();

__DATA__

=== TEST 1: no comet with an address: the default domain
--- request
GET /goim/nodes/weighted?platform=android
--- response_body
{"code":0,"message":"","data":{"domain":"conn.goim.io","tcp_port":3101,"ws_port":3102,"wss_port":3103,"heartbeat":240,"nodes":["conn.goim.io"],"backoff":{"max_delay":300,"base_delay":3,"factor":1.8,"jitter":0.3},"heartbeat_max":2}}



=== TEST 2: weights against connections: the empty comet first, offline ones left out, all addresses of each
--- init
main::three();
--- request
GET /goim/nodes/weighted?platform=android
--- response_body
{"code":0,"message":"","data":{"domain":"conn.goim.io","tcp_port":3101,"ws_port":3102,"wss_port":3103,"heartbeat":240,"nodes":["2.2.2.2","2.2.2.3","3.3.3.3","1.1.1.1"],"backoff":{"max_delay":300,"base_delay":3,"factor":1.8,"jitter":0.3},"heartbeat_max":2}}



=== TEST 3: web clients get host names: comet id + host domain
--- init
main::three();
--- request
GET /goim/nodes/weighted?platform=web
--- response_body
{"code":0,"message":"","data":{"domain":"conn.goim.io","tcp_port":3101,"ws_port":3102,"wss_port":3103,"heartbeat":240,"nodes":["c2.goim.io","c3.goim.io","c1.goim.io","comet-test.goim.io"],"backoff":{"max_delay":300,"base_delay":3,"factor":1.8,"jitter":0.3},"heartbeat_max":2}}



=== TEST 4: a client of region sh: c3's weight gains 1.6, it comes first
--- init
main::three();
--- request
GET /goim/nodes/weighted?platform=web
--- more_headers
X-Region: sh
--- response_body_like: "nodes":\["c3.goim.io","c2.goim.io","c1.goim.io","comet-test.goim.io"\]



=== TEST 5: the first node counts one more connection per answer (until its next report)
--- init
main::renew(id => 'c1', weight => 10, conn_count => 1, addrs => ['1.1.1.1']);
main::renew(id => 'c2', weight => 10, addrs => ['2.2.2.2']);
main::renew(id => 'c3', weight => 10, conn_count => 10, addrs => ['3.3.3.3'], offline => 1);
my $http = HTTP::Tiny->new(timeout => Goim::Time::scaled(3));
my $url = 'http://127.0.0.1:' . Test::Nginx::Socket::server_port()
          . '/goim/nodes/weighted?platform=web';
# c1: 10 + round(0) = 10, c2: 10 + round(0.5) = 10 (halves round down): c1
# by name; then c1 counts 2 of 2: 10 against c2's 11
Test::More::like($http->get($url)->{content}, qr/"nodes":\["c1\.goim\.io","c2/, 'TEST 5 - c1 first');
Test::More::like($http->get($url)->{content}, qr/"nodes":\["c2\.goim\.io","c1/, 'TEST 5 - then c2');
--- request
GET /goim/nodes/weighted?platform=web
--- response_body_like: "nodes":\["c2\.goim\.io","c1\.goim\.io","comet-test\.goim\.io"\]



=== TEST 6: at most 5 nodes
--- init
main::renew(id => "c$_", weight => 10, addrs => ["10.0.0.$_"]) for 1 .. 7;
--- request
GET /goim/nodes/weighted
--- response_body_like: "nodes":\["10\.0\.0\.1","10\.0\.0\.2","10\.0\.0\.3","10\.0\.0\.4","10\.0\.0\.5"\],



=== TEST 7: instances: goim's discovery shape, from the registry
--- init
main::three();
--- request
GET /goim/nodes/instances
--- response_body_like: \{"region":"sh","zone":"","env":"","appid":"goim.comet","hostname":"c3","addrs":\["grpc://127.0.0.1:1"\],"version":"","latest_timestamp":\d{19},"metadata":\{"addrs":"3.3.3.3","conn_count":"150","ip_count":"7","offline":"false","weight":"20"\}\}



=== TEST 8: offline comets are listed as instances
--- init
main::three();
--- request
GET /goim/nodes/instances
--- response_body_like: "hostname":"c9".*"metadata":\{"addrs":"9.9.9.9","conn_count":"0","ip_count":"0","offline":"true","weight":"50"\}



=== TEST 9: the comet of the test nginx reports its addresses, weight and region
--- main_config eval
my $c = $Goim::Stack::MainConfig;
$c =~ s/goim_comet_weight 0;/goim_comet_weight 7;\n    goim_comet_region gz;\n    goim_comet_addrs 192.0.2.1 192.0.2.2;/;
$c
--- init
main::wait_instances(qr/"hostname":"comet-test".*"weight":"7"/);
--- request
GET /goim/nodes/instances
--- response_body_like: \{"region":"gz","zone":"","env":"","appid":"goim.comet","hostname":"comet-test",.*"metadata":\{"addrs":"192.0.2.1,192.0.2.2","conn_count":"0","ip_count":"0","offline":"false","weight":"7"\}\}



=== TEST 10: defaults: goim's example ports and backoff, no domain; web clients without a host domain get addresses
--- http_config
--- init
main::renew(id => "c$_", weight => 10, offline => 1) for 1 .. 7;
main::wait_instances(qr/"hostname":"comet-test".*"addrs":"","conn_count":"\d+","ip_count":"\d+","offline":"false","weight":"0"/);
--- request
GET /goim/nodes/weighted?platform=web
--- response_body
{"code":0,"message":"","data":{"tcp_port":3101,"ws_port":3102,"wss_port":3103,"heartbeat":240,"nodes":[],"backoff":{"max_delay":300,"base_delay":3,"factor":1.8,"jitter":0.3},"heartbeat_max":2}}



=== TEST 11: no host domain: web clients get the comets' addresses
--- http_config
--- init
main::three();
--- request
GET /goim/nodes/weighted?platform=web
--- response_body_like: "nodes":\["2\.2\.2\.2","2\.2\.2\.3","3\.3\.3\.3","1\.1\.1\.1"\]



=== TEST 12: wrong method
--- request
POST /goim/nodes/weighted
--- error_code: 405
--- response_body
{"code":-405,"message":"/nodes/weighted needs GET"}



=== TEST 13: Logic.Nodes over RPC: the same weighting and fields, as protobuf
--- init
main::three();
my ($op, $body) = Goim::RouterRpc::call($ENV{TEST_NGINX_LOGIC_PORT}, 106,
                                        Goim::RouterRpc::f_bytes(1, 'web'));
Test::More::is($op, 106 | 0x40000000, 'TEST 13 - a Nodes reply');
my @f = Goim::RouterRpc::decode($body // '');
my %one = map { $_->[0] == 6 ? () : @$_ } @f;
Test::More::is($one{1}, 'conn.goim.io', 'TEST 13 - domain');
Test::More::is(join(' ', map { $one{$_} } 2, 3, 4, 5, 8), '3101 3102 3103 240 2',
               'TEST 13 - ports, heartbeat in seconds, heartbeat_max');
Test::More::is(join(',', map { $_->[1] } grep { $_->[0] == 6 } @f),
               'c2.goim.io,c3.goim.io,c1.goim.io,comet-test.goim.io', 'TEST 13 - nodes');
my %b = map { @$_ } Goim::RouterRpc::decode($one{7} // '');
Test::More::is(sprintf('%d %d %.1f %.1f', @b{1 .. 4}), '300 3 1.8 0.3', 'TEST 13 - backoff');
--- request
GET /goim/nodes/instances
--- response_body_like: "hostname":"c3"


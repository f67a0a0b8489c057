# goim_logic_status with four workers: the API requests are spread over
# them (reuseport), the page, answered by any one, counts them all.
use strict;
use warnings;

use Goim::Workers;

BEGIN {
    $ENV{TEST_NGINX_REUSE_PORT} = 1;
}

use Test::Nginx::Socket 'no_plan';
use Goim::Stack;
use Goim::Time;
use HTTP::Tiny;

master_on();
workers(4);

$Goim::Stack::Config .= <<'_EOC_';
    location = /logic-status {
        goim_logic_status;
    }
_EOC_

Goim::Stack::setup();
run_tests();
Goim::Stack::teardown();

__DATA__

=== TEST 1: 40 pushes over several workers, 40 on the page
--- http_config
    log_format pids '$pid $uri $status';
    access_log logs/pids.log pids;
--- init
my $port = Test::Nginx::Socket::server_port();
for (1 .. 40) {
    # a new connection each time: the kernel picks a worker per connection
    HTTP::Tiny->new(timeout => Goim::Time::scaled(3), keep_alive => 0)
        ->post("http://127.0.0.1:$port/goim/push/mids?operation=1000&mids=1", {content => 'x'});
}
my %pids;
open my $fh, '<', "$Test::Nginx::Socket::ServRoot/logs/pids.log" or die "pids.log: $!\n";
while (<$fh>) { $pids{$1}++ if m{^(\d+) /goim/push/mids 200$} }
Test::More::cmp_ok(scalar keys %pids, '>=', 2, 'TEST 1 - the pushes reached several workers');
--- request
GET /logic-status
--- response_body_like eval
qr/(?m)^goim_logic_requests_total\{endpoint="\/goim\/push\/mids",status="200"\} 40$
.*^goim_logic_rpc_duration_milliseconds_count\{upstream="router"\} 40$/s

# goim_logic_status: logic's counters in Prometheus' text format, summed
# over every worker (a shared zone): requests by endpoint and status, RPC
# round trips to router and job as histograms, RPC and queue errors, the
# comets' Connect calls accepted and refused.
use strict;
use warnings;

use Test::Nginx::Socket 'no_plan';
use Goim::Stack;
use Goim::Time;
use HTTP::Tiny;

$Goim::Stack::Config .= <<'_EOC_';
    location /1/ {
        goim_logic_api_v1;
    }

    location = /logic-status {
        goim_logic_status;
    }
_EOC_

sub get  { HTTP::Tiny->new(timeout => Goim::Time::scaled(3))->get('http://127.0.0.1:' . Test::Nginx::Socket::server_port() . shift) }
sub post { HTTP::Tiny->new(timeout => Goim::Time::scaled(3))->post('http://127.0.0.1:' . Test::Nginx::Socket::server_port() . shift,
                                               {content => shift // 'x'}) }

Goim::Stack::setup();
run_tests();
Goim::Stack::teardown();

__DATA__

=== TEST 1: requests, RPC histograms, auth outcomes
--- init
Goim::Stack::client('s1', '{"mid":5201,"accepts":[1000]}', 1);
Goim::Stack::client('s2', 'not a token', 1);
main::post('/goim/push/mids?operation=1000&mids=5201', 'x') for 1 .. 3;
main::post('/goim/push/mids?operation=1000&mids=abc');
main::post('/goim/push/all?operation=1000');
main::get('/goim/push/all');
main::get('/goim/nope');
main::get('/goim/online/total');
main::post('/1/push?uid=5201');
--- request
GET /logic-status
--- response_headers
Content-Type: text/plain; version=0.0.4
--- response_body_like eval
qr/\A(?=.*^goim_logic_requests_total\{endpoint="\/goim\/push\/mids",status="200"\}[ ]3$)
      (?=.*^goim_logic_requests_total\{endpoint="\/goim\/push\/mids",status="400"\}[ ]1$)
      (?=.*^goim_logic_requests_total\{endpoint="\/goim\/push\/all",status="200"\}[ ]1$)
      (?=.*^goim_logic_requests_total\{endpoint="\/goim\/push\/all",status="405"\}[ ]1$)
      (?=.*^goim_logic_requests_total\{endpoint="unknown",status="404"\}[ ]1$)
      (?=.*^goim_logic_requests_total\{endpoint="\/goim\/online\/total",status="200"\}[ ]1$)
      (?=.*^goim_logic_requests_total\{endpoint="\/1\/push",status="200"\}[ ]1$)
      (?=.*^\#[ ]TYPE[ ]goim_logic_rpc_duration_milliseconds[ ]histogram$)
      (?=.*^goim_logic_rpc_duration_milliseconds_bucket\{upstream="router",le="\+Inf"\}[ ]5$)
      (?=.*^goim_logic_rpc_duration_milliseconds_count\{upstream="router"\}[ ]5$)
      (?=.*^goim_logic_rpc_duration_milliseconds_bucket\{upstream="job",le="\+Inf"\}[ ]5$)
      (?=.*^goim_logic_rpc_duration_milliseconds_sum\{upstream="job"\}[ ]\d+$)
      (?=.*^goim_logic_rpc_errors_total\{upstream="router"\}[ ]0$)
      (?=.*^goim_logic_queue_errors_total[ ]0$)
      (?=.*^goim_logic_auth_total\{result="accepted"\}[ ]1$)
      (?=.*^goim_logic_auth_total\{result="refused"\}[ ]1$)/msx



=== TEST 2: only GET
--- request
POST /logic-status
--- error_code: 405

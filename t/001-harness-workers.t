# Self-test of the t/lib harness with a master process and two workers.
use Test::Nginx::Socket 'no_plan';
use Goim::Stream;

Goim::Stream::setup();
master_on();
workers(2);
repeat_each(3);

run_tests();

__DATA__

=== TEST 1: master + 2 workers answer, and nothing severe is logged
--- config
    location = /pid {
        return 200 "worker\n";
    }
--- request
GET /pid
--- response_body
worker
--- no_error_log
[error]

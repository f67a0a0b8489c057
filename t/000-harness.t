# Self-test of the t/lib Test::Nginx::Socket harness against plain nginx
# (no ngx_goim module needed).  Every block is valid for the real harness too.
use Test::Nginx::Socket 'no_plan';
use Goim::Stream;
use Goim::Client qw(pack_packet unpack_packets);

# Goim::Client's codec (the client itself needs the comet module)
{
    my $two = pack_packet(1, 7, 3, '{"mid":1}') . pack_packet(1, 9, -1, '');
    my @p = unpack_packets($two . substr(pack_packet(1, 2, 0, 'x'), 0, 10));
    Test::More::is(scalar @p, 2, 'goim codec: two complete packets, partial tail ignored');
    Test::More::is_deeply([@{$p[0]}{qw(len hlen ver op seq body)}],
                          [25, 16, 1, 7, 3, '{"mid":1}'], 'goim codec: header fields');
    Test::More::is($p[1]{seq}, -1, 'goim codec: signed sequence');
    Test::More::ok(!eval { Goim::Client->new('127.0.0.1', 1, 1, transport => 'udp'); 1 }
                   && $@ =~ /unknown transport/, 'goim client: unknown transport refused');
    my $f = Goim::Client::ws_frame(2, 'abc', mask => 0);
    Test::More::is(unpack('H*', $f), '8203616263', 'goim client: unmasked ws frame bytes');
}

Goim::Stream::setup();
no_shuffle();
no_root_location();
log_level('debug');

$ENV{TEST_NGINX_GREETING} = 'hi-from-env';

# custom section --- resp_len: checks the body length
add_response_body_check(sub {
    my ($block, $body, $req_idx, $repeated_req_idx, $dry_run) = @_;
    my $want = $block->resp_len;
    return unless defined $want;
    Test::More::is(length($body // ''), $want,
                   $block->name . " - resp_len (req $repeated_req_idx)");
});

# preprocessors: as in the real harness the one added last runs first
add_block_preprocessor(sub { my $b = shift; $b->set_value(pp_order => ($b->pp_order // '') . 'first') if defined $b->pp_order });
add_block_preprocessor(sub { my $b = shift; $b->set_value(pp_order => ($b->pp_order // '') . 'second,') if defined $b->pp_order });
add_response_body_check(sub {
    my ($block) = @_;
    return unless defined $block->pp_order;
    Test::More::is($block->pp_order, 'second,first', $block->name . ' - preprocessors ran last added first');
});

run_tests();

__DATA__

=== TEST 1: config, request, response_body, default status 200
--- config
    location = /t {
        return 200 "hello\n";
    }
--- request
    GET /t
--- response_body
hello
--- resp_len: 6
--- no_error_log
[error]



=== TEST 2: error_code and response_body_like
--- config
    location = /gone {
        return 410;
    }
--- request
GET /gone
--- error_code: 410
--- response_body_like: 410 Gone



=== TEST 3: more_headers, response_headers, response_headers_like
--- config
    location = /h {
        add_header X-Echo $http_x_foo;
        add_header X-Empty "";
        return 200 "ok\n";
    }
--- more_headers
X-Foo: bar baz
--- request
GET /h
--- response_headers
X-Echo: bar baz
Content-Type: text/plain
!X-Missing
--- response_headers_like
Server: nginx/[\d.]+
Content-Length: \d
--- response_body
ok



=== TEST 3b: a SKIP block is not run (its config is bogus)
--- config
    location = /echo {
        client_body_buffer_size 1k;
        echo_read_request_body_is_not_needed_here off;
    }
--- request
POST /echo
hello
--- SKIP



=== TEST 4: raw_request chunks with raw_request_middle_delay
--- config
    location = /raw {
        return 200 "raw $request_method $uri\n";
    }
--- raw_request eval
["GET /raw HTTP/1.0\r\nHo",
 "st: localhost\r\n",
 "\r\n"]
--- raw_request_middle_delay: 0.05
--- response_body
raw GET /raw



=== TEST 5: http09 gives the raw reply as the body
--- config
    location = /raw09 {
        return 200 "nine\n";
    }
--- raw_request eval
"GET /raw09 HTTP/1.0\r\nHost: localhost\r\n\r\n"
--- http09
--- response_body_like: ^HTTP/1\.1 200 OK\r\n.*\r\n\r\nnine\n$



=== TEST 6: timeout + abort on a connection nginx keeps open
--- config
    location = /t {
        return 200 "never\n";
    }
--- raw_request eval
"GET /t HTTP/1.1\r\nHost: localhost\r\n"
--- timeout: 300ms
--- abort
--- ignore_response
--- no_error_log
[error]



=== TEST 7: error_log and no_error_log (strings and eval'd regexes)
--- config
    location /files/ {
        root $TEST_NGINX_SERVER_ROOT/html;
    }
--- request
GET /files/nothing-here.txt
--- error_code: 404
--- error_log eval
[qr/open\(\) ".*nothing-here\.txt" failed \(2: No such file or directory\)/,
 "[error]"]
--- no_error_log eval
[qr/\[alert\].*nothing-here/]



=== TEST 8: main_config, http_config and $TEST_NGINX_* substitution
--- main_config
    env TEST_NGINX_GREETING;
--- http_config
    map $uri $mapped {
        default "$TEST_NGINX_GREETING";
    }
--- config
    location = /m {
        return 200 "$mapped port=$TEST_NGINX_SERVER_PORT\n";
    }
--- request
GET /m
--- response_body eval
"hi-from-env port=$ENV{TEST_NGINX_SERVER_PORT}\n"



=== TEST 9: user_files served from the html dir
--- config
    location / {
        root $TEST_NGINX_SERVER_ROOT/html;
    }
--- user_files
>>> a.txt
file a
>>> sub/b.txt
file b
--- request eval
["GET /a.txt", "GET /sub/b.txt"]
--- response_body eval
["file a\n", "file b\n"]



=== TEST 10: chunked responses are decoded
--- config
    location / {
        root $TEST_NGINX_SERVER_ROOT/html;
        sub_filter_types text/plain;
        sub_filter world there;
    }
--- user_files
>>> c.txt
hello world
--- request
GET /c.txt
--- response_headers
Transfer-Encoding: chunked
!Content-Length
--- response_body
hello there



=== TEST 11: pipelined requests on one connection
--- config
    location = /p {
        return 200 "p=$arg_n\n";
    }
--- pipelined_requests eval
["GET /p?n=1", "GET /p?n=2"]
--- response_body eval
["p=1\n", "p=2\n"]



=== TEST 12: init runs after nginx starts, before the requests
--- config
    location / {
        root $TEST_NGINX_SERVER_ROOT/html;
    }
--- init
    open my $fh, '>', html_dir() . '/init.txt' or die $!;
    print $fh "made by init\n";
    close $fh;
--- request
GET /init.txt
--- response_body
made by init



=== TEST 13: wait and grep_error_log
--- config
    location = /w {
        return 204;
    }
--- request
GET /w
--- error_code: 204
--- response_body:
--- wait: 0.1
--- grep_error_log eval
qr/http finalize request: \d+, "\/w\?"/
--- grep_error_log_out
http finalize request: 0, "/w?"



=== TEST 13b: each request's error log check sees what was logged since the last one
--- config
    location = /w {
        return 204;
    }
--- request eval
["GET /w", "GET /w"]
--- error_code eval
[204, 204]
--- pp_order:
--- grep_error_log eval
qr/http finalize request: \d+, "\/w\?"/
--- grep_error_log_out
http finalize request: 0, "/w?"



=== TEST 14: stream block through Goim::Stream
--- stream_server_config
    return "hello";
--- stream_response: hello
--- no_error_log
[error]



=== TEST 15: stream_request through a stream proxy to the http server
--- stream_server_config
    proxy_pass 127.0.0.1:$TEST_NGINX_SERVER_PORT;
--- config
    location = /via {
        return 200 "via stream\n";
    }
--- stream_request eval
"GET /via HTTP/1.0\r\nHost: localhost\r\n\r\n"
--- stream_response_like
^HTTP/1.1 200 OK\r\n.*\r\n\r\nvia stream$



=== TEST 16: shutdown_error_log
--- config
    location = /s {
        return 200 "s\n";
    }
--- request
GET /s
--- response_body
s
--- shutdown_error_log eval
qr/signal 3 \(SIGQUIT\) received/



=== TEST 17: blocks after LAST are not run
--- config
    location = /last {
        return 200 "last\n";
    }
--- request
GET /last
--- response_body
last
--- LAST



=== TEST 18: never run (after LAST)
--- config
    location = /x {
        return 500;
    }
--- request
GET /x
--- response_body
this would fail

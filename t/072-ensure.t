# Ensure messages (not in goim): a push by mid or key with ensure=1 is
# kept by goim-job until a connection of the mid acknowledges it (op 18):
# it reaches acknowledging clients as op 19 (seq, id, the plain packet),
# goim's clients plainly and once; what is not acknowledged is resent
# (same id and seq), what is pushed while the mid is offline is delivered
# when it next connects, in order; GET /goim/push/receipts tells the
# business each message's fate.
use strict;
use warnings;

use Test::Nginx::Socket 'no_plan';
use Goim::Stack;
use Goim::Client qw(:ops unpack_ensure);
use Goim::Daemon;
use Goim::Time;
use HTTP::Tiny;
use JSON::PP;

# resends every 300 ms, given up after 3 sends; 5 pending per mid at most
Goim::Stack::setup(job_args => ['--ensure-retry', 300, '--ensure-retries', 3,
                                '--ensure-mailbox-max', 5]);
$Goim::Stack::Config .= <<'_EOC_';
    location /1/ {
        goim_logic_api_v1;
    }
_EOC_
run_tests();
Goim::Stack::teardown();


sub http {
    my ($method, $path, $body) = @_;
    my $res = HTTP::Tiny->new(timeout => Goim::Time::scaled(5))->request(
        $method, 'http://127.0.0.1:' . Test::Nginx::Socket::server_port() . $path,
        defined $body ? {content => $body} : {});
    my $json = eval { decode_json($res->{content}) } // {raw => $res->{content}};
    return ($res->{status}, $json);
}

# an ensure push: its id, or it dies with the answer
sub ensure_push {
    my ($path, $body) = @_;
    my ($status, $json) = http('POST', $path, $body);
    die "push $path: $status " . encode_json($json) . "\n"
        unless $status == 200 && $json->{data}{id};
    return $json->{data}{id};
}

sub receipts {
    my ($id) = @_;
    my ($status, $json) = http('GET', "/goim/push/receipts?id=$id");
    return $status == 200 ? $json->{data} : [];
}

# until the receipt of (id, mid) is in state; it, or undef
sub wait_receipt {
    my ($id, $mid, $state, $timeout) = @_;
    my $got;
    Goim::Time::wait_until(sub {
        ($got) = grep { $_->{mid} == $mid } @{receipts($id)};
        $got && $got->{state} eq $state;
    }, $timeout // 10);
    return $got && $got->{state} eq $state ? $got : undef;
}

# a client that acknowledges: authenticated, then the empty op 18
sub acking {
    my ($name, $token, %opts) = @_;
    my $c = Goim::Stack::client($name, $token, 1, %opts);
    die "$name: no auth reply\n" unless $Goim::Stack::Clients{$name}{auth};
    $c->send_packet(1, OP_ACK, 0, '');
    return $c;
}

# the next op 19 the client gets, opened; undef after timeout
sub next_ensure {
    my ($c, $timeout) = @_;
    my $p = $c->wait_for_op(OP_ENSURE, Goim::Time::scaled($timeout // 5))
        or return undef;
    return unpack_ensure($p->{body});
}

sub job_stats {
    my $bin = Goim::Daemon::build_dir() . '/goim-job';
    my %s = map { /^(\w+)=(-?\d+)$/ ? ($1, $2) : () }
            `$bin --stats @{[$Goim::Stack::Job->addr]} 2>&1`;
    return \%s;
}

__DATA__

=== TEST 1: an acknowledging client gets op 19, acks it, the receipt says delivered
--- init
my $c = main::acking('a1', '{"mid":7201,"key":"k7201","accepts":[1000]}');
my $id = main::ensure_push('/goim/push/mids?operation=1000&mids=7201&ensure=1', 'hello');
Test::More::like($id, qr/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
                 'the push answers the message id');
my $e = main::next_ensure($c) or die "a1: no op 19\n";
Test::More::is($e->{id}, $id, 'op 19 carries the id');
Test::More::ok($e->{seq} > 0, "and a seq ($e->{seq})");
Test::More::is(Goim::Stack::describe($e->{packet}), 'op=1000 seq=0 ver=1 body=hello',
               'and the plain packet');
my $r = main::receipts($id);
Test::More::is(scalar(@$r), 1, 'one receipt: one mid');
Test::More::is($r->[0]{state}, 'pending', 'pending until acknowledged');
$c->send_packet(1, Goim::Client::OP_ACK(), 0, $id);
my $got = main::wait_receipt($id, 7201, 'delivered');
Test::More::ok($got, 'delivered once acknowledged');
Test::More::is($got && $got->{key}, 'k7201', 'by the key that acked');
Test::More::is($got && $got->{seq}, $e->{seq}, 'the receipt has its seq');
Test::More::ok($got && $got->{time_ms} >= $got->{created_ms}, 'and when');
Test::More::is($c->read_packet(Goim::Time::scaled(1)), undef, 'nothing is resent after the ack');
--- request
GET /goim/push/receipts?id=no-such-id
--- error_code: 404
--- response_body
{"code":-404,"message":"no ensure message with this id (never pushed, or its receipt expired)"}



=== TEST 2: a goim client (no op 18) gets an ensure message once, plainly; it expires unacknowledged
--- init
my $c = Goim::Stack::client('g1', '{"mid":7202,"accepts":[1000]}', 1);
my $id = main::ensure_push('/goim/push/mids?operation=1000&mids=7202&ensure=1', 'plain');
my $p = $c->read_packet(Goim::Time::scaled(5));
Test::More::is(Goim::Stack::describe($p), 'op=1000 seq=0 ver=1 body=plain',
               'g1: the plain packet, as goim sends it');
my $got = main::wait_receipt($id, 7202, 'expired', 20);
Test::More::is($got && $got->{reason}, 'retries', 'expired after ensure_retries sends');
Test::More::is($got && $got->{attempts}, 3, 'three sends');
Test::More::is($c->read_packet(0.5), undef, 'g1 got nothing else: no resend, no op 19');
--- request
GET /goim/push/receipts?id=
--- error_code: 400
--- response_body
{"code":-400,"message":"id is required"}



=== TEST 3: what is not acknowledged is resent, with the same id and seq
--- init
my $c = main::acking('a3', '{"mid":7203,"accepts":[1000]}');
my $id = main::ensure_push('/goim/push/mids?operation=1000&mids=7203&ensure=1', 'again');
my $e1 = main::next_ensure($c) or die "a3: no op 19\n";
my $e2 = main::next_ensure($c) or die "a3: no resend\n";
Test::More::is("$e2->{id} $e2->{seq}", "$e1->{id} $e1->{seq}", 'the resend has the same id and seq');
Test::More::is(Goim::Stack::describe($e2->{packet}), 'op=1000 seq=0 ver=1 body=again', 'and message');
$c->send_packet(1, Goim::Client::OP_ACK(), 0, $id);
Test::More::ok(main::wait_receipt($id, 7203, 'delivered'), 'delivered once acknowledged');
# a resend may have been on its way with the ack: nothing after it
while (my $p = $c->read_packet(Goim::Time::scaled(1))) { }
Test::More::is($c->read_packet(1), undef, 'no more resends');
--- request
GET /status
--- response_body_like chomp
"online":



=== TEST 4: pushed while the mid is offline: delivered in order when it connects; a short TTL expires
--- init
my @ids = map { main::ensure_push('/goim/push/mids?operation=1000&mids=7204&ensure=1', "m$_") } 1 .. 3;
my $short = main::ensure_push('/goim/push/mids?operation=1000&mids=7204&ensure=1&ttl=1', 'short');
Test::More::is(main::receipts($ids[0])->[0]{state}, 'pending', 'kept while offline');
Test::More::is(main::receipts($ids[0])->[0]{attempts}, 0, 'with no send used up');
Test::More::ok(main::wait_receipt($short, 7204, 'expired', 10), 'the 1 s one expires');
Test::More::is(main::receipts($short)->[0]{reason}, 'ttl', 'for its TTL');
# resends keep going to nobody: the retry limit is not used up offline
sleep(Goim::Time::scaled(1.5));
my $c = main::acking('a4', '{"mid":7204,"accepts":[1000]}');
my @got = map { main::next_ensure($c) or die "a4: op 19 #$_ missing\n" } 1 .. 3;
Test::More::is(join(' ', map { $_->{id} } @got), "@ids", 'all three, in order');
Test::More::is(join(' ', map { Goim::Stack::describe($_->{packet}) =~ s/.*body=//r } @got),
               'm1 m2 m3', 'their messages');
Test::More::ok($got[0]{seq} < $got[1]{seq} && $got[1]{seq} < $got[2]{seq}, 'seqs increase');
$c->send_packet(1, Goim::Client::OP_ACK(), 0, join(',', map { $_->{id} } @got));
Test::More::ok(main::wait_receipt($_, 7204, 'delivered'), "$_ delivered") for @ids;
--- request
GET /status
--- response_body_like chomp
"online":



=== TEST 5: ensure by key reaches that key only, not the mid's other device
--- init
my $k = main::acking('k1', '{"mid":7205,"key":"k7205-a","accepts":[1000]}');
my $o = main::acking('k2', '{"mid":7205,"key":"k7205-b","accepts":[1000]}');
my $id = main::ensure_push('/goim/push/keys?operation=1000&keys=k7205-a&ensure=1', 'only a');
my $e = main::next_ensure($k) or die "k1: no op 19\n";
Test::More::is($e->{id}, $id, 'k1 gets it');
$k->send_packet(1, Goim::Client::OP_ACK(), 0, $id);
Test::More::is(main::wait_receipt($id, 7205, 'delivered')->{key}, 'k7205-a', 'acked by k1');
Test::More::is($o->read_packet(Goim::Time::scaled(1)), undef, 'k2 got nothing');
--- request
POST /goim/push/keys?operation=1000&keys=nobody-has-this-key&ensure=1
x
--- error_code: 404
--- response_body
{"code":-404,"message":"ensure: router knows none of the keys (an offline key has no mid to wait for; push by mid)"}



=== TEST 6: a connection that closes before acking gets it again on the next one, same id and seq
--- init
my $c = main::acking('r1', '{"mid":7206,"accepts":[1000]}');
my $id = main::ensure_push('/goim/push/mids?operation=1000&mids=7206&ensure=1', 'survives');
my $e1 = main::next_ensure($c) or die "r1: no op 19\n";
$c->close;
my $c2 = main::acking('r2', '{"mid":7206,"accepts":[1000]}', transport => 'ws');
my $e2 = main::next_ensure($c2) or die "r2: no op 19\n";
Test::More::is("$e2->{id} $e2->{seq}", "$e1->{id} $e1->{seq}", 'the new connection (WebSocket) gets it again');
$c2->send_packet(1, Goim::Client::OP_ACK(), 0, "$id,unknown-id");
Test::More::ok(main::wait_receipt($id, 7206, 'delivered'), 'delivered');
Test::More::ok(main::job_stats()->{ensure_acks_unknown} >= 1, 'the unknown id is counted');
Test::More::ok($c2->heartbeat(3), 'the connection is fine after acking an unknown id');
--- request
GET /status
--- response_body_like chomp
"online":



=== TEST 7: bad ensure requests get a 400 with a reason and push nothing
--- init
my $before = main::job_stats()->{ensure_msgs};
for my $t (['/goim/push/mids?operation=1000&mids=7207&ensure=2', 'ensure must be 0 or 1'],
           ['/goim/push/mids?operation=1000&mids=7207&ensure=1&ttl=0', 'ttl must be 1 .. 86400 seconds (goim_logic_ensure_max_ttl)'],
           ['/goim/push/mids?operation=1000&mids=7207&ensure=1&ttl=86401', 'ttl must be 1 .. 86400 seconds (goim_logic_ensure_max_ttl)'],
           ['/goim/push/mids?operation=1000&mids=7207&ttl=5', 'ttl needs ensure=1']) {
    my ($status, $json) = main::http('POST', $t->[0], 'x');
    Test::More::is("$status $json->{message}", "400 $t->[1]", "$t->[0]: 400");
}
Test::More::is(main::job_stats()->{ensure_msgs}, $before, 'nothing more was kept');
--- request
GET /goim/push/receipts?id=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
--- error_code: 400
--- response_body
{"code":-400,"message":"id is longer than 64 bytes"}



=== TEST 8: a full mailbox refuses the push with 503 and a reason, and counts it
--- init
main::ensure_push('/goim/push/mids?operation=1000&mids=7208&ensure=1', "f$_") for 1 .. 5;
--- request
POST /goim/push/mids?operation=1000&mids=7208&ensure=1
sixth
--- error_code: 503
--- response_body
{"code":-500,"message":"queue: mid 7208 has 5 ensure messages pending (ensure_mailbox_max)"}



=== TEST 9: goim v1's /1/push takes ensure=1 too
--- init
my $c = main::acking('v1', '{"mid":7209,"accepts":[5]}');
my ($status, $json) = main::http('POST', '/1/push?uid=7209&ensure=1', 'from v1');
Test::More::is($status, 200, 'v1 push: 200');
my $id = $json->{data}{id} // '';
Test::More::like($id, qr/^[0-9a-f-]{36}$/, 'with the id');
my $e = main::next_ensure($c) or die "v1: no op 19\n";
Test::More::is("$e->{id} " . Goim::Stack::describe($e->{packet}), "$id op=5 seq=0 ver=1 body=from v1",
               'op 19 around v1\'s op 5');
$c->send_packet(1, Goim::Client::OP_ACK(), 0, $id);
Test::More::ok(main::wait_receipt($id, 7209, 'delivered'), 'delivered');
--- request
GET /status
--- response_body_like chomp
"online":



=== TEST 10: router killed and restarted while a message waits for an offline mid: it is delivered on connect
--- init
my $id = main::ensure_push('/goim/push/mids?operation=1000&mids=7210&ensure=1', 'kept by job');
my $port = $Goim::Stack::Router->port;
$Goim::Stack::Router->crash;
$Goim::Stack::Router = Goim::Daemon->start('router', port => $port);
my $c = main::acking('rr', '{"mid":7210,"accepts":[1000]}');
my $e = main::next_ensure($c) or die "rr: no op 19\n";
Test::More::is($e->{id}, $id, 'delivered after the router restart');
$c->send_packet(1, Goim::Client::OP_ACK(), 0, $id);
Test::More::ok(main::wait_receipt($id, 7210, 'delivered'), 'and acknowledged');
--- request
GET /status
--- response_body_like chomp
"online":

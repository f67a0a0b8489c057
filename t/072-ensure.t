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
use Goim::Ensure qw(http ensure_push receipts wait_receipt acking next_ensure job_stats);
use Goim::Time;
use Goim::Log;

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


__DATA__

=== TEST 1: an acknowledging client gets op 19, acks it, the receipt says delivered
--- init
my $c = Goim::Ensure::acking('a1', '{"mid":7201,"key":"k7201","accepts":[1000]}');
my $id = Goim::Ensure::ensure_push('/goim/push/mids?operation=1000&mids=7201&ensure=1', 'hello');
Test::More::like($id, qr/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
                 'the push answers the message id');
my $e = Goim::Ensure::next_ensure($c) or die "a1: no op 19\n";
Test::More::is($e->{id}, $id, 'op 19 carries the id');
Test::More::ok($e->{seq} > 0, "and a seq ($e->{seq})");
Test::More::is(Goim::Stack::describe($e->{packet}), 'op=1000 seq=0 ver=1 body=hello',
               'and the plain packet');
my $r = Goim::Ensure::receipts($id);
Test::More::is(scalar(@$r), 1, 'one receipt: one mid');
Test::More::is($r->[0]{state}, 'pending', 'pending until acknowledged');
$c->send_packet(1, Goim::Client::OP_ACK(), 0, $id);
my $got = Goim::Ensure::wait_receipt($id, 7201, 'delivered');
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
my $id = Goim::Ensure::ensure_push('/goim/push/mids?operation=1000&mids=7202&ensure=1', 'plain');
my $p = $c->read_packet(Goim::Time::scaled(5));
Test::More::is(Goim::Stack::describe($p), 'op=1000 seq=0 ver=1 body=plain',
               'g1: the plain packet, as goim sends it');
my $got = Goim::Ensure::wait_receipt($id, 7202, 'expired', 20);
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
my $c = Goim::Ensure::acking('a3', '{"mid":7203,"accepts":[1000]}');
my $id = Goim::Ensure::ensure_push('/goim/push/mids?operation=1000&mids=7203&ensure=1', 'again');
my $e1 = Goim::Ensure::next_ensure($c) or die "a3: no op 19\n";
my $e2 = Goim::Ensure::next_ensure($c) or die "a3: no resend\n";
Test::More::is("$e2->{id} $e2->{seq}", "$e1->{id} $e1->{seq}", 'the resend has the same id and seq');
Test::More::is(Goim::Stack::describe($e2->{packet}), 'op=1000 seq=0 ver=1 body=again', 'and message');
$c->send_packet(1, Goim::Client::OP_ACK(), 0, $id);
Test::More::ok(Goim::Ensure::wait_receipt($id, 7203, 'delivered'), 'delivered once acknowledged');
# a resend may have been on its way with the ack: nothing after it
while (my $p = $c->read_packet(Goim::Time::scaled(1))) { }
Test::More::is($c->read_packet(1), undef, 'no more resends');
--- request
GET /status
--- response_body_like chomp
"online":



=== TEST 4: pushed while the mid is offline: delivered in order when it connects; a short TTL expires
--- init
my @ids = map { Goim::Ensure::ensure_push('/goim/push/mids?operation=1000&mids=7204&ensure=1', "m$_") } 1 .. 3;
my $short = Goim::Ensure::ensure_push('/goim/push/mids?operation=1000&mids=7204&ensure=1&ttl=1', 'short');
Test::More::is(Goim::Ensure::receipts($ids[0])->[0]{state}, 'pending', 'kept while offline');
Test::More::is(Goim::Ensure::receipts($ids[0])->[0]{attempts}, 0, 'with no send used up');
Test::More::ok(Goim::Ensure::wait_receipt($short, 7204, 'expired', 10), 'the 1 s one expires');
Test::More::is(Goim::Ensure::receipts($short)->[0]{reason}, 'ttl', 'for its TTL');
# resends keep going to nobody: the retry limit is not used up offline
sleep(Goim::Time::scaled(1.5));
my $c = Goim::Ensure::acking('a4', '{"mid":7204,"accepts":[1000]}');
my @got = map { Goim::Ensure::next_ensure($c) or die "a4: op 19 #$_ missing\n" } 1 .. 3;
Test::More::is(join(' ', map { $_->{id} } @got), "@ids", 'all three, in order');
Test::More::is(join(' ', map { Goim::Stack::describe($_->{packet}) =~ s/.*body=//r } @got),
               'm1 m2 m3', 'their messages');
Test::More::ok($got[0]{seq} < $got[1]{seq} && $got[1]{seq} < $got[2]{seq}, 'seqs increase');
$c->send_packet(1, Goim::Client::OP_ACK(), 0, join(',', map { $_->{id} } @got));
Test::More::ok(Goim::Ensure::wait_receipt($_, 7204, 'delivered'), "$_ delivered") for @ids;
--- request
GET /status
--- response_body_like chomp
"online":



=== TEST 5: ensure by key reaches that key only, not the mid's other device
--- init
my $k = Goim::Ensure::acking('k1', '{"mid":7205,"key":"k7205-a","accepts":[1000]}');
my $o = Goim::Ensure::acking('k2', '{"mid":7205,"key":"k7205-b","accepts":[1000]}');
my $id = Goim::Ensure::ensure_push('/goim/push/keys?operation=1000&keys=k7205-a&ensure=1', 'only a');
my $e = Goim::Ensure::next_ensure($k) or die "k1: no op 19\n";
Test::More::is($e->{id}, $id, 'k1 gets it');
$k->send_packet(1, Goim::Client::OP_ACK(), 0, $id);
Test::More::is(Goim::Ensure::wait_receipt($id, 7205, 'delivered')->{key}, 'k7205-a', 'acked by k1');
Test::More::is($o->read_packet(Goim::Time::scaled(1)), undef, 'k2 got nothing');
--- request
POST /goim/push/keys?operation=1000&keys=nobody-has-this-key&ensure=1
x
--- error_code: 404
--- response_body
{"code":-404,"message":"ensure: router knows none of the keys (an offline key has no mid to wait for; push by mid)"}



=== TEST 6: a connection that closes before acking gets it again on the next one, same id and seq
--- init
my $c = Goim::Ensure::acking('r1', '{"mid":7206,"accepts":[1000]}');
my $id = Goim::Ensure::ensure_push('/goim/push/mids?operation=1000&mids=7206&ensure=1', 'survives');
my $e1 = Goim::Ensure::next_ensure($c) or die "r1: no op 19\n";
$c->close;
my $c2 = Goim::Ensure::acking('r2', '{"mid":7206,"accepts":[1000]}', transport => 'ws');
my $e2 = Goim::Ensure::next_ensure($c2) or die "r2: no op 19\n";
Test::More::is("$e2->{id} $e2->{seq}", "$e1->{id} $e1->{seq}", 'the new connection (WebSocket) gets it again');
$c2->send_packet(1, Goim::Client::OP_ACK(), 0, "$id,unknown-id");
Test::More::ok(Goim::Ensure::wait_receipt($id, 7206, 'delivered'), 'delivered');
Test::More::ok(Goim::Ensure::job_stats()->{ensure_acks_unknown} >= 1, 'the unknown id is counted');
Test::More::ok($c2->heartbeat(3), 'the connection is fine after acking an unknown id');
--- request
GET /status
--- response_body_like chomp
"online":



=== TEST 7: bad ensure requests get a 400 with a reason and push nothing
--- init
my $before = Goim::Ensure::job_stats()->{ensure_msgs};
for my $t (['/goim/push/mids?operation=1000&mids=7207&ensure=2', 'ensure must be 0 or 1'],
           ['/goim/push/mids?operation=1000&mids=7207&ensure=1&ttl=0', 'ttl must be 1 .. 86400 seconds (goim_logic_ensure_max_ttl)'],
           ['/goim/push/mids?operation=1000&mids=7207&ensure=1&ttl=86401', 'ttl must be 1 .. 86400 seconds (goim_logic_ensure_max_ttl)'],
           ['/goim/push/mids?operation=1000&mids=7207&ttl=5', 'ttl needs ensure=1']) {
    my ($status, $json) = Goim::Ensure::http('POST', $t->[0], 'x');
    Test::More::is("$status $json->{message}", "400 $t->[1]", "$t->[0]: 400");
}
Test::More::is(Goim::Ensure::job_stats()->{ensure_msgs}, $before, 'nothing more was kept');
--- request
GET /goim/push/receipts?id=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
--- error_code: 400
--- response_body
{"code":-400,"message":"id is longer than 64 bytes"}



=== TEST 8: a full mailbox refuses the push with 503 and a reason, and counts it
--- init
Goim::Ensure::ensure_push('/goim/push/mids?operation=1000&mids=7208&ensure=1', "f$_") for 1 .. 5;
--- request
POST /goim/push/mids?operation=1000&mids=7208&ensure=1
sixth
--- error_code: 503
--- response_body
{"code":-500,"message":"queue: mid 7208 has 5 ensure messages pending (ensure_mailbox_max)"}



=== TEST 9: goim v1's /1/push takes ensure=1 too
--- init
my $c = Goim::Ensure::acking('v1', '{"mid":7209,"accepts":[5]}');
my ($status, $json) = Goim::Ensure::http('POST', '/1/push?uid=7209&ensure=1', 'from v1');
Test::More::is($status, 200, 'v1 push: 200');
my $id = $json->{data}{id} // '';
Test::More::like($id, qr/^[0-9a-f-]{36}$/, 'with the id');
my $e = Goim::Ensure::next_ensure($c) or die "v1: no op 19\n";
Test::More::is("$e->{id} " . Goim::Stack::describe($e->{packet}), "$id op=5 seq=0 ver=1 body=from v1",
               'op 19 around v1\'s op 5');
$c->send_packet(1, Goim::Client::OP_ACK(), 0, $id);
Test::More::ok(Goim::Ensure::wait_receipt($id, 7209, 'delivered'), 'delivered');
--- request
GET /status
--- response_body_like chomp
"online":



=== TEST 10: router killed and restarted while a message waits for an offline mid: it is delivered on connect
--- init
my $id = Goim::Ensure::ensure_push('/goim/push/mids?operation=1000&mids=7210&ensure=1', 'kept by job');
my $port = $Goim::Stack::Router->port;
$Goim::Stack::Router->crash;
$Goim::Stack::Router = Goim::Daemon->start('router', port => $port);
my $c = Goim::Ensure::acking('rr', '{"mid":7210,"accepts":[1000]}');
# the new router knows no comet until comet renews (goim_comet_online_interval)
# and job reads its list again: the send waits for both
my $e = Goim::Ensure::next_ensure($c, 30) or die "rr: no op 19\n";
Test::More::is($e->{id}, $id, 'delivered after the router restart');
$c->send_packet(1, Goim::Client::OP_ACK(), 0, $id);
Test::More::ok(Goim::Ensure::wait_receipt($id, 7210, 'delivered'), 'and acknowledged');
--- request
GET /status
--- response_body_like chomp
"online":



=== TEST 11: an ONLINE that logic could not hand on (job down) is sent again with the next heartbeats until it lands
--- init
# a killed job, not a stopped one: a stopped job would still read the
# first ONLINE from its socket when it resumes, and whether it does
# depends on when logic gives up on that connection
my $port = $Goim::Stack::Job->port;
$Goim::Stack::Job->crash;
my $c = Goim::Ensure::acking('on1', '{"mid":7211,"accepts":[1000]}');
my $failed = Goim::Log::wait_for(qr/logic Ack \(online\) failed, sent again with the next heartbeat/,
                                  Goim::Time::scaled(20));
Test::More::ok($failed, 'comet logs the failed ONLINE');
$Goim::Stack::Job = Goim::Daemon->start('job', name => 'job-online', port => $port,
    args => ['--ensure-retry', 300, '--ensure-retries', 3, '--ensure-mailbox-max', 5]);
# the new job has heard no ONLINE: only comet's resend can bring one; it
# goes with each heartbeat until logic confirms it (logic may still be
# reconnecting to job for the first few)
my $landed = Goim::Time::wait_until(sub {
    $c->heartbeat(undef, Goim::Time::scaled(5)) or die "on1: no heartbeat reply\n";
    (Goim::Ensure::job_stats()->{ensure_online} // 0) >= 1 }, 20, 0.5);
Test::More::ok($landed, 'a heartbeat sent the ONLINE again');
my $id = Goim::Ensure::ensure_push('/goim/push/mids?operation=1000&mids=7211&ensure=1', 'after');
Test::More::is((Goim::Ensure::next_ensure($c, 30) // {})->{id}, $id, 'and the connection acknowledges');
--- request
GET /status
--- response_body_like chomp
"online":
--- error_log
logic Ack (online) failed, sent again with the next heartbeat
--- no_error_log
[alert]
[crit]
--- timeout: 40

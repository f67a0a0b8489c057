# Pushes through the whole stack with Kafka between logic and job: logic
# produces goim v2 PushMsg records (goim_logic_queue kafka=...), goim-job
# consumes them as a consumer group and calls the comet.  A real Kafka
# broker (KRaft, one node) runs for this file (Goim::Kafka).
use strict;
use warnings;

use Test::Nginx::Socket 'no_plan';
use Time::HiRes ();
use Goim::Daemon;
use Goim::Kafka;
use Goim::Stack;
use Goim::Time;

our $Kafka = Goim::Kafka->start(partitions => 4);

Goim::Stack::setup(job_args => ['--kafka-brokers', $Kafka->brokers,
                                '--kafka-topic', $Kafka->topic,
                                '--kafka-group', "job-040-$$"]);
$Goim::Stack::MainConfig =~ s{goim_logic_job [^;]*;}
    {goim_logic_queue kafka=\$TEST_NGINX_KAFKA_BROKERS topic=\$TEST_NGINX_KAFKA_TOPIC;};

run_tests();
Goim::Stack::teardown();
$Kafka->finish;

__DATA__

=== TEST 1: a push by mid goes through Kafka and reaches the client
--- init
Goim::Stack::client('c1', '{"mid":123,"room_id":"live://1000","platform":"web","accepts":[1000]}', 7);
--- request
POST /goim/push/mids?operation=1000&mids=123
hello via kafka
--- response_body
{"code":0,"message":""}
--- goim_receive
c1 op=1000 seq=0 ver=1 body=hello via kafka



=== TEST 2: a push by key
--- init
Goim::Stack::client('c2', '{"mid":125,"key":"key-125-a","accepts":[1002]}', 1);
--- request
POST /goim/push/keys?operation=1002&keys=key-125-a
by key
--- response_body
{"code":0,"message":""}
--- goim_receive
c2 op=1002 seq=0 ver=1 body=by key



=== TEST 3: a room push reaches every member of the room, and only them
--- init
Goim::Stack::client('r1', '{"mid":301,"room_id":"live://42","accepts":[1000]}', 1);
Goim::Stack::client('r2', '{"mid":302,"room_id":"live://42","accepts":[1000]}', 1);
Goim::Stack::client('r3', '{"mid":303,"room_id":"live://43","accepts":[1000]}', 1);
--- request
POST /goim/push/room?operation=1000&type=live&room=42
to the room
--- response_body
{"code":0,"message":""}
--- goim_receive
r1 op=1000 seq=0 ver=1 body=to the room
r2 op=1000 seq=0 ver=1 body=to the room
r3 none



=== TEST 4: a broadcast reaches every client
--- init
Goim::Stack::client('b1', '{"mid":401,"accepts":[1005]}', 1);
Goim::Stack::client('b2', '{"mid":402,"room_id":"live://9","accepts":[1005]}', 1);
--- request
POST /goim/push/all?operation=1005&speed=0
to everyone
--- response_body
{"code":0,"message":""}
--- goim_receive
b1 op=1005 seq=0 ver=1 body=to everyone
b2 op=1005 seq=0 ver=1 body=to everyone



=== TEST 5: a room's messages arrive in the order they were pushed
--- init
my $c = Goim::Stack::client('o1', '{"mid":501,"room_id":"live://order","accepts":[1000]}', 1);
my $port = Test::Nginx::Socket::server_port();
for my $i (1 .. 60) {
    my ($st) = Goim::Kafka::http_post($port, "/goim/push/room?operation=1000&type=live&room=order", "m$i");
    die "push $i: status $st\n" unless $st == 200;
}
my @got;
while (@got < 60) {
    my $p = $c->read_packet(Goim::Time::scaled(5)) or last;
    push @got, $p->{body};
}
Test::More::is("@got", join(' ', map { "m$_" } 1 .. 60), 'TEST 5: room order kept');
--- request
POST /goim/push/room?operation=1000&type=live&room=order
last
--- response_body
{"code":0,"message":""}
--- goim_receive
o1 op=1000 seq=0 ver=1 body=last



=== TEST 6: a lone room message goes out at once (goim waits up to 1 s for company)
--- init
# the best of 5 room pushes against the best of 5 pushes by mid, which take
# the same path less job's room batching: what a slow run adds to both
# cancels out, a 1 s wait for company would not
my $c = Goim::Stack::client('l1', '{"mid":601,"room_id":"live://lone","accepts":[1000]}', 1);
my $port = Test::Nginx::Socket::server_port();
my %best = (room => 1e9, mids => 1e9);
for my $i (1 .. 5) {
    for my $how ('room', 'mids') {
        my $path = $how eq 'room' ? "/goim/push/room?operation=1000&type=live&room=lone"
                                  : "/goim/push/mids?operation=1000&mids=601";
        my $t0 = Time::HiRes::time();
        my ($st) = Goim::Kafka::http_post($port, $path, "lone$how$i");
        my $p = $c->read_packet(Goim::Time::scaled(3));
        die "lone $how push $i: status $st, " . ($p ? "got $p->{body}" : 'nothing') . "\n"
            unless $st == 200 && $p && $p->{body} eq "lone$how$i";
        my $dt = Time::HiRes::time() - $t0;
        $best{$how} = $dt if $dt < $best{$how};
    }
}
my $extra = $best{room} - $best{mids};
Test::More::cmp_ok($extra, '<', 0.5, sprintf("TEST 6: a lone room push takes %.3f s, %.3f s more than"
                   . " one by mid, not a 1 s wait", $best{room}, $extra));
--- request
POST /goim/push/room?operation=1000&type=live&room=lone
one more
--- response_body
{"code":0,"message":""}
--- goim_receive
l1 op=1000 seq=0 ver=1 body=one more



=== TEST 7: job's Kafka options: a bad value is one line on stderr and exit 1
--- init
my $bin = Goim::Daemon::build_dir() . '/goim-job';
for my $case (['--kafka-brokers', 'nocolon'], ['--room-batch', '0'],
              ['--kafka-brokers', '127.0.0.1:1', '--kafka-topic', '']) {
    my $out = qx{$bin -t @$case 2>&1};
    my $st = $? >> 8;
    chomp $out;
    Test::More::is($st, 1, "TEST 7: goim-job -t @$case exits 1");
    Test::More::like($out, qr/\Agoim-job: [^\n]+\z/, "TEST 7: one line: $out");
}
my $out = qx{$bin -t --kafka-brokers 127.0.0.1:9092,127.0.0.2:9092 --room-wait 0 2>&1};
Test::More::is($? >> 8, 0, "TEST 7: a good Kafka configuration passes -t ($out)");
--- request
POST /goim/push/mids?operation=1000&mids=1
x
--- response_body
{"code":0,"message":""}

# Pushes through the whole stack with Kafka between logic and job: logic
# produces goim v2 PushMsg records (goim_logic_queue kafka=...), goim-job
# consumes them as a consumer group and calls the comet.  A real Kafka
# broker (KRaft, one node) runs for this file (Goim::Kafka).
use strict;
use warnings;

use Test::Nginx::Socket 'no_plan';
use Goim::Kafka;
use Goim::Stack;

our $Kafka = Goim::Kafka->start(partitions => 4);

Goim::Stack::setup(job_args => ['--kafka-brokers', $Kafka->brokers,
                                '--kafka-topic', $Kafka->topic,
                                '--kafka-group', "job-040-$$"]);
$Goim::Stack::MainConfig =~ s{goim_logic_job [^;]*;}
    {goim_logic_queue kafka=\$TEST_NGINX_KAFKA_BROKERS topic=\$TEST_NGINX_KAFKA_TOPIC;};
# comet drops a push for a client whose queue is full (goim's policy, not
# job's): roomy enough here for the bursts job sends after a restart
$Goim::Stack::MainConfig =~ s{goim_comet;}{goim_comet;\n            goim_comet_queue 4096;};

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
    my $p = $c->read_packet(5) or last;
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

# The records logic's Kafka producer writes are goim v2's PushMsg, byte
# for byte: read back from the topic and decoded here by field number
# (type 1, operation 2, speed 3, server 4, room 5, keys 6, msg 7), with
# goim's partition keys (PUSH: keys[0], ROOM: the room, BROADCAST: the
# operation in decimal), so goim's own job could consume them.
use strict;
use warnings;

use Test::Nginx::Socket 'no_plan';
use Goim::Kafka;
use Goim::Stack;

our $Kafka = Goim::Kafka->start(partitions => 4);

Goim::Stack::setup();
$Goim::Stack::MainConfig =~ s{goim_logic_job [^;]*;}
    {goim_logic_queue kafka=\$TEST_NGINX_KAFKA_BROKERS topic=\$TEST_NGINX_KAFKA_TOPIC;};

sub varint {
    my ($buf, $pos) = @_;
    my ($v, $shift) = (0, 0);
    while (1) {
        my $b = ord substr($$buf, $$pos++, 1);
        $v |= ($b & 0x7f) << $shift;
        last unless $b & 0x80;
        $shift += 7;
    }
    return $v;
}

# a PushMsg as goim v2 defines it, decoded from its wire form
sub decode {
    my $buf = pack 'H*', shift;
    my %m = (type => 0, operation => 0, speed => 0, server => '', room => '', keys => [], msg => '');
    my @names = (undef, qw(type operation speed server room keys msg));
    my $pos = 0;
    while ($pos < length $buf) {
        my $tag = varint(\$buf, \$pos);
        my ($field, $wire) = ($tag >> 3, $tag & 7);
        my $name = $names[$field] // "field$field";
        if ($wire == 0) {
            $m{$name} = varint(\$buf, \$pos);
        } elsif ($wire == 2) {
            my $len = varint(\$buf, \$pos);
            my $v = substr($buf, $pos, $len);
            $pos += $len;
            if ($name eq 'keys') { push @{$m{keys}}, $v } else { $m{$name} = $v }
        } else {
            die "unexpected wire type $wire for field $field\n";
        }
    }
    return sprintf 'type=%d operation=%d speed=%d server=%s room=%s keys=%s msg=%s',
        $m{type}, $m{operation}, $m{speed}, $m{server}, $m{room},
        join(',', @{$m{keys}}), $m{msg};
}

add_response_body_check(sub {
    my ($block) = @_;
    my $want = $block->kafka_records or return;
    my $bin = ($ENV{GOIM_BUILD_DIR} || 'build') . '/unit/kafka_dump';
    my @want = grep { length } split /\n/, $want;
    my @lines = `$bin @{[$Kafka->brokers]} @{[$Kafka->topic]} @{[scalar @want]}`;
    is($?, 0, $block->name . ' - the records were read back');
    my @got = sort map { /key=(\S*) value=([0-9a-f]*)/ ? "key=$1 " . decode($2) : "bad line: $_" } @lines;
    is(join("\n", @got), join("\n", sort @want), $block->name . ' - records as goim v2 writes them');
});

run_tests();
Goim::Stack::teardown();
$Kafka->finish;

__DATA__

=== TEST 1: push by mid, room push and broadcast produce goim v2 records
--- init
Goim::Stack::client('k', '{"mid":4242,"key":"rec-key-1","accepts":[1000]}', 1);
my $port = Test::Nginx::Socket::server_port();
Goim::Kafka::http_post($port, '/goim/push/mids?operation=1000&mids=4242', 'by mid');
Goim::Kafka::http_post($port, '/goim/push/room?operation=1001&type=live&room=77', 'to room');
Goim::Kafka::http_post($port, '/goim/push/all?operation=1002&speed=5', 'to all');
--- request
GET /status
--- response_body_like: "online":1
--- kafka_records
key=rec-key-1 type=0 operation=1000 speed=0 server=comet-test room= keys=rec-key-1 msg=by mid
key=live://77 type=1 operation=1001 speed=0 server= room=live://77 keys= msg=to room
key=1002 type=2 operation=1002 speed=5 server= room= keys= msg=to all

package Goim::Kafka;

# A real Apache Kafka broker (KRaft, one node) for one test file, run by
# scripts/kafka.sh from Maven Central's jars (fetched once into
# ~/.cache/ngx_goim, see the script).
#
#   my $k = Goim::Kafka->start(partitions => 4);  # sets $ENV{TEST_NGINX_KAFKA_BROKERS}
#   $k->brokers;                 # "127.0.0.1:PORT"
#   $k->topic;                   # "goim-push-topic" unless topic => ...
#   $k->stop;                    # the broker goes away (data kept) ...
#   $k->start_again;             # ... and comes back on the same port
#   $k->finish;                  # stopped and its directory removed (END does it too)
#
# Helpers for tests that push many records:
#   my ($status, $body) = Goim::Kafka::http_post($port, $path_and_query, $body);

use strict;
use warnings;

use File::Path qw(remove_tree);
use IO::Socket::INET;
use Goim::Daemon;

my @All;

sub script { $ENV{GOIM_KAFKA_SCRIPT} // 'scripts/kafka.sh' }

sub start {
    my ($class, %o) = @_;
    my $self = bless {
        dir => "t/servroot-kafka-$$",
        port => Goim::Daemon::free_port(),
        cport => Goim::Daemon::free_port(),
        topic => $o{topic} // 'goim-push-topic',
        partitions => $o{partitions} // 4,
        owner => $$,
    }, $class;
    remove_tree($self->{dir});
    $self->_start;
    system(script(), 'topic', $self->{dir}, $self->{topic}, $self->{partitions}) == 0
        or die "Goim::Kafka: cannot create topic $self->{topic}\n";
    $ENV{TEST_NGINX_KAFKA_BROKERS} = $self->brokers;
    $ENV{TEST_NGINX_KAFKA_TOPIC} = $self->{topic};
    push @All, $self;
    return $self;
}

sub _start {
    my $self = shift;
    system(script(), 'start', $self->{dir}, $self->{port}, $self->{cport}) == 0
        or die "Goim::Kafka: the broker did not start (see $self->{dir}/kafka.log)\n";
    $self->{running} = 1;
}

sub brokers { "127.0.0.1:$_[0]{port}" }
sub topic   { $_[0]{topic} }
sub dir     { $_[0]{dir} }

sub stop {
    my $self = shift;
    return unless $self->{running};
    system(script(), 'stop', $self->{dir});
    $self->{running} = 0;
}

sub start_again { $_[0]->_start }

sub finish {
    my $self = shift;
    $self->stop;
    remove_tree($self->{dir}) unless $ENV{GOIM_KEEP_KAFKA};
}

# a minimal HTTP/1.0 POST: (status, body)
sub http_post {
    my ($port, $path, $body) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 10)
        or return (0, "connect: $!");
    $body //= '';
    print $s "POST $path HTTP/1.0\r\nHost: localhost\r\nContent-Length: "
        . length($body) . "\r\n\r\n$body";
    local $/;
    my $resp = <$s> // '';
    close $s;
    my ($status) = $resp =~ m{^HTTP/1\.\d (\d+)};
    my (undef, $rbody) = split /\r\n\r\n/, $resp, 2;
    return ($status // 0, $rbody // '');
}

END {
    for my $k (@All) {
        $k->finish if $k->{owner} == $$;
    }
}

1;

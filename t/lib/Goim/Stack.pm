package Goim::Stack;

# The whole ngx_goim stack for one test file: goim-router and goim-job on
# free ports, and the nginx configuration that puts comet (TCP and
# WebSocket) and logic (RPC and HTTP API) in the test nginx.
#
#   use Test::Nginx::Socket 'no_plan';
#   use Goim::Stack;
#   Goim::Stack::setup();          # daemons, default config, checks
#   run_tests();
#   Goim::Stack::teardown();       # stops the daemons (one test each)
#
# Blocks get $Goim::Stack::MainConfig / $Config unless they set their own,
# and "[error]" in --- no_error_log unless they expect log lines.  Sections
# checked after the block's request (by add_response_body_check):
#   --- goim_auth
#   NAME <packet>           what client NAME got for its auth ("none")
#   --- goim_receive
#   NAME <packet>           the next packet NAME receives ("none": nothing
#                           within half a second); one line per packet
#   --- goim_closed
#   NAME [STATUS]           the server closed NAME's connection (with a
#                           WebSocket close frame of STATUS)
#   --- goim_ws_frames
#   NAME OPCODE...          the opcodes of the frames NAME received so far
#   --- goim_ws_rsv1
#   NAME BIT...             their RSV1 bits (1: compressed, permessage-deflate)
#   --- goim_ws_extensions
#   NAME VALUE              the Sec-WebSocket-Extensions of NAME's 101
#                           answer ("none": no such header)
# where <packet> is "op=N seq=N ver=N body=TEXT".  Clients are made in
# --- init with Goim::Stack::client(NAME, TOKEN, SEQ, transport => 'ws').

use strict;
use warnings;

use IO::Socket::INET;
use Test::More ();
use Test::Nginx::Socket ();
use Goim::Client;
use Goim::Daemon;
use Goim::Time;

our ($Router, $Job, %Clients);

our $MainConfig = <<'_EOC_';
    goim_comet_id comet-test;
    goim_comet_rpc_secret_file $TEST_NGINX_RPC_SECRET_FILE;
    goim_logic_rpc_secret_file $TEST_NGINX_RPC_SECRET_FILE;
    goim_comet_logic 127.0.0.1:$TEST_NGINX_LOGIC_PORT;
    goim_logic_router 127.0.0.1:$TEST_NGINX_ROUTER_PORT;
    goim_logic_job 127.0.0.1:$TEST_NGINX_JOB_PORT;

    stream {
        server {
            listen 127.0.0.1:$TEST_NGINX_COMET_PORT;
            goim_comet;
        }

        server {
            listen 127.0.0.1:$TEST_NGINX_PUSH_PORT;
            goim_comet_push;
        }

        server {
            listen 127.0.0.1:$TEST_NGINX_LOGIC_PORT;
            goim_logic_rpc;
        }
    }
_EOC_

our $Config = <<'_EOC_';
    # a refused POST's body would be drained for up to 5 s after the
    # answer, and valgrind mode's nginx exits without waiting for that
    lingering_close off;

    location /goim/ {
        goim_logic_api;
    }

    location = /sub {
        goim_comet_ws;
    }

    location = /status {
        goim_comet_status;
    }
_EOC_

# setup(job_args => [...]): extra flags for goim-job (e.g. Kafka's)
sub setup {
    my %o = @_;
    slow_rpc_timeouts();
    $Router = Goim::Daemon->start('router');
    $Job = Goim::Daemon->start('job', args => $o{job_args} || []);

    for my $name (qw(COMET PUSH LOGIC)) {
        $ENV{"TEST_NGINX_${name}_PORT"} ||= Goim::Daemon::free_port();
    }

    Test::Nginx::Socket::add_block_preprocessor(\&defaults);
    Test::Nginx::Socket::add_response_body_check(\&check);
    Test::Nginx::Socket::no_shuffle();
    Test::Nginx::Socket::no_root_location();
}

# nginx under valgrind runs comet, logic and TLS in one slow process: the
# default RPC timeouts (3 s, 1 s) expire there while a reply waits to be
# read, and so does the 5 s a client has to authenticate.  Slow runs scale
# them (Goim::Time), unless the file set its own (a server-level
# goim_comet_handshake_timeout still wins over the stream-level one).
sub slow_rpc_timeouts {
    return if Goim::Time::scale() == 1;
    for my $d (['goim_comet_rpc_timeout', 3], ['goim_logic_rpc_timeout', 1]) {
        next if $MainConfig =~ /\b$d->[0]\b/;
        my $t = int(Goim::Time::scaled($d->[1]));
        $MainConfig =~ s/^(\s*goim_comet_id [^;]*;)/$1\n    $d->[0] ${t}s;/m;
    }
    my $hs = 'goim_comet_handshake_timeout ' . int(Goim::Time::scaled(5)) . 's;';
    $MainConfig =~ s/^(\s*stream \{\n)/$1        $hs\n/m unless $MainConfig =~ /handshake_timeout/;
    $Config = "    $hs\n$Config" unless $Config =~ /handshake_timeout/;
}

sub teardown {
    $_->close for map { $_->{client} } values %Clients;
    %Clients = ();
    $Job->stop if $Job;
    $Router->stop if $Router;
}

sub defaults {
    my $block = shift;
    $block->set_value('main_config', $MainConfig) unless defined $block->main_config;
    $block->set_value('config', $Config) unless defined $block->config;
    $block->set_value('no_error_log', "[error]\n[alert]\n[crit]")
        unless defined $block->no_error_log || defined $block->error_log;
    # the harness's 3 s for a response, scaled for slow runs
    $block->set_value('timeout', Goim::Time::scaled(3)) unless defined $block->timeout;
    # the real Test::Nginx runs --- init as soon as it has started nginx
    # under valgrind, before nginx listens: an init talks to nginx once
    # it does
    $block->set_value('init', "Goim::Stack::wait_listening();\n" . $block->init)
        if defined $block->init;
}

# until the test nginx accepts connections on its HTTP port (it opens all
# its listeners at once)
sub wait_listening {
    my $port = Test::Nginx::Socket::server_port();
    Goim::Time::wait_until(sub {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                      Proto => 'tcp', Timeout => 1) or return 0;
        close $s;
        1;
    }, 10) or die "Goim::Stack: nginx does not listen on port $port\n";
}

# a connected client, authenticated with TOKEN (the reply is kept)
sub client {
    my ($name, $token, $seq, %opts) = @_;
    my $port = delete $opts{port};
    $port //= ($opts{transport} // 'tcp') eq 'ws'
              ? Test::Nginx::Socket::server_port()
              : $ENV{TEST_NGINX_COMET_PORT};
    my $c = Goim::Client->new('127.0.0.1', $port, Goim::Time::scaled(5), %opts);
    $Clients{$name} = {client => $c,
                       auth => defined $token ? $c->auth($token, $seq) : undef};
    return $c;
}

# POSTs a push through logic's API N times (from --- init)
sub push {
    my ($path, $body, $n) = @_;
    require HTTP::Tiny;
    my $http = HTTP::Tiny->new(timeout => Goim::Time::scaled(5));
    my $url = 'http://127.0.0.1:' . Test::Nginx::Socket::server_port() . $path;
    my $ok = 0;
    for (1 .. ($n // 1)) {
        $ok++ if $http->post($url, {content => $body})->{success};
    }
    return $ok;
}

sub describe {
    my $p = shift;
    return 'none' unless $p;
    (my $body = $p->{body}) =~ s/([^\x20-\x7e])/sprintf('\\x%02x', ord $1)/ge;
    # keys logic made up are random: they read as <uuid>
    $body =~ s/[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}/<uuid>/g;
    return "op=$p->{op} seq=$p->{seq} ver=$p->{ver} body=$body";
}

# "NAME VALUE..." lines: the FIELD of each frame NAME received so far
sub frames_check {
    my ($name, $spec, $field, $what) = @_;
    return unless defined $spec;
    for my $line (split /\n/, $spec) {
        my ($who, @want) = split /\s+/, $line;
        my $c = $Clients{$who}{client};
        # the frames expected, however slow they are; then any extra
        Goim::Time::wait_until(sub { $c->pump(0.05); @{$c->frames} >= @want || $c->eof }, 3);
        $c->pump(0.3);
        Test::More::is(join(' ', map { $_->{$field} } @{$c->frames}), "@want",
                       "$name - $who $what");
    }
}

sub check {
    my ($block) = @_;
    my $name = $block->name;

    if (defined(my $spec = $block->goim_auth)) {
        for my $line (split /\n/, $spec) {
            my ($who, $want) = split /\s+/, $line, 2;
            $want =~ s/\s+$//;
            Test::More::is(describe($Clients{$who}{auth}), $want, "$name - $who auth reply");
        }
    }

    if (defined(my $spec = $block->goim_receive)) {
        for my $line (split /\n/, $spec) {
            my ($who, $want) = split /\s+/, $line, 2;
            $want =~ s/\s+$//;
            my $got = $Clients{$who}{client}->read_packet($want eq 'none' ? 0.5
                                                          : Goim::Time::scaled(3));
            Test::More::is(describe($got), $want, "$name - $who receives");
        }
    }

    if (defined(my $spec = $block->goim_closed)) {
        for my $line (split /\n/, $spec) {
            my ($who, $status) = split /\s+/, $line;
            my $c = $Clients{$who}{client};
            Test::More::ok($c->wait_closed(Goim::Time::scaled(3)), "$name - $who was closed");
            Test::More::is($c->close_status, $status, "$name - $who close status")
                if defined $status;
        }
    }

    frames_check($name, scalar $block->goim_ws_frames, 'opcode', 'frame opcodes');
    frames_check($name, scalar $block->goim_ws_rsv1, 'rsv1', "frames' RSV1");

    if (defined(my $spec = $block->goim_ws_extensions)) {
        for my $line (split /\n/, $spec) {
            my ($who, $want) = split /\s+/, $line, 2;
            $want =~ s/\s+$//;
            my ($got) = ($Clients{$who}{client}->response_headers // '')
                        =~ /^Sec-WebSocket-Extensions:[ \t]*(.*?)\r?$/mi;
            Test::More::is($got // 'none', $want, "$name - $who extensions answered");
        }
    }
}

1;

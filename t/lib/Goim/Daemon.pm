package Goim::Daemon;

# Start/stop ngx_goim's daemons (goim-router, goim-job) for one test file.
#
#   my $router = Goim::Daemon->start('router');        # sets $ENV{TEST_NGINX_ROUTER_PORT}
#   my $job    = Goim::Daemon->start('job');           # --router 127.0.0.1:$ENV{TEST_NGINX_ROUTER_PORT}
#   ... run_tests() / Goim::Client ...
#   $job->stop;  $router->stop;                        # one TAP test each
#
# start($type, %opts) runs $ENV{GOIM_BUILD_DIR}/goim-$type (default build/,
# relative to the directory prove runs in) as
#     goim-$type --listen 127.0.0.1:PORT --log-level debug [--router ...] @args
# on a free port, with stdout+stderr in t/servroot-daemons/<name>.log, waits
# until the port accepts connections and exports
# $ENV{TEST_NGINX_<TYPE>_PORT}.  It dies (with the log's tail) if the daemon
# exits or does not listen within the timeout.  Options:
#     name => 'router2'      log file name and label (default: $type)
#     port => 12345          instead of a free port
#     args => [...]          extra command-line arguments
#     env  => {K => 'v'}     extra environment for the daemon
#     log_level => 'info'    (default debug)
#     router => 'host:port'  for 'job' (default 127.0.0.1:$ENV{TEST_NGINX_ROUTER_PORT})
#     binary => '/path'      instead of $GOIM_BUILD_DIR/goim-$type
#     timeout => 10          seconds to wait for the port
#     no_env => 1            do not export TEST_NGINX_<TYPE>_PORT
#
# The RPC plane is authenticated in tests as in `make run`: loading this
# module writes a random secret file (mode 0600, t/servroot-daemons/
# rpc-PID.secret, removed at exit) and exports it as $GOIM_RPC_SECRET_FILE
# (the daemons' default rpc_secret_file, --stats included) and
# $TEST_NGINX_RPC_SECRET_FILE (for goim_comet_rpc_secret_file and
# goim_logic_rpc_secret_file in nginx.conf), unless GOIM_RPC_SECRET_FILE is
# already set.  A daemon without a secret: env => {GOIM_RPC_SECRET_FILE => ''}.
#
# crash() SIGKILLs it (no TAP test).
# stop(%opts) sends SIGTERM, waits up to 10 s (timeout => N), SIGKILLs if it
# has to, and reports one TAP test (Test::More::ok) that passes only if the
# daemon exited with status 0 and its log has no "ERROR: AddressSanitizer",
# "runtime error:" (UBSan) or "LeakSanitizer" line.  An END block stops any
# daemon still running (and so reports its test too).

use strict;
use warnings;

use File::Path qw(make_path);
use File::Spec;
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Test::More ();
use Time::HiRes qw(sleep time);
use Goim::Time;

our $LogDir = 't/servroot-daemons';
our @BadLogPatterns = (qr/ERROR: AddressSanitizer/, qr/runtime error:/, qr/LeakSanitizer/);
my %Running;    # pid => object
our $FailedAfterDone = 0;
our $SecretFile;

# a new random secret file (mode 0600) under the log directory
sub write_secret {
    my ($name) = @_;
    make_path($LogDir);
    my $file = File::Spec->rel2abs("$LogDir/$name");
    open my $r, '<', '/dev/urandom' or die "Goim::Daemon: /dev/urandom: $!\n";
    read($r, my $bytes, 32) == 32 or die "Goim::Daemon: short read of /dev/urandom\n";
    close $r;
    unlink $file;
    my $old = umask 077;
    open my $fh, '>', $file or die "Goim::Daemon: cannot write $file: $!\n";
    print $fh unpack('H*', $bytes), "\n";
    close $fh;
    umask $old;
    chmod 0600, $file;
    return $file;
}

unless (defined $ENV{GOIM_RPC_SECRET_FILE}) {
    $SecretFile = write_secret("rpc-$$.secret");
    $ENV{GOIM_RPC_SECRET_FILE} = $SecretFile;
}
$ENV{TEST_NGINX_RPC_SECRET_FILE} //= $ENV{GOIM_RPC_SECRET_FILE};
my $SecretOwner = $$;

sub free_port {
    # below the kernel's ephemeral range (32768 and up here): a port from
    # that range can be taken by some outgoing connection before the
    # server that was to listen on it binds it
    for (1 .. 1000) {
        my $port = 10000 + int rand 22000;
        my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '0.0.0.0',
                                      LocalPort => $port, Proto => 'tcp',
                                      ReuseAddr => 1) or next;
        close $s;
        return $port;
    }
    die "Goim::Daemon: no free port\n";
}

sub build_dir { $ENV{GOIM_BUILD_DIR} // 'build' }

sub start {
    my ($class, $type, %o) = @_;
    die "Goim::Daemon->start: daemon type missing\n" unless $type;
    my $name = $o{name} // $type;
    my $port = $o{port} // free_port();
    my $bin = $o{binary} // File::Spec->catfile(build_dir(), "goim-$type");
    die "Goim::Daemon: $bin is not an executable (not built yet?)\n" unless -x $bin;

    my @cmd = ($bin, '--listen', "127.0.0.1:$port", '--log-level', $o{log_level} // 'debug');
    if ($type eq 'job') {
        my $router = $o{router} // do {
            die "Goim::Daemon: start the router before the job (TEST_NGINX_ROUTER_PORT unset)\n"
                unless $ENV{TEST_NGINX_ROUTER_PORT};
            "127.0.0.1:$ENV{TEST_NGINX_ROUTER_PORT}";
        };
        push @cmd, '--router', $router;
    }
    push @cmd, @{$o{args} || []};

    make_path($LogDir);
    my $log = "$LogDir/$name.log";
    open my $fh, '>', $log or die "Goim::Daemon: cannot write $log: $!\n";
    close $fh;

    my $pid = fork;
    die "Goim::Daemon: fork failed: $!\n" unless defined $pid;
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $log;
        open STDERR, '>>&', \*STDOUT;
        $ENV{$_} = $o{env}{$_} for keys %{$o{env} || {}};
        exec(@cmd) or print STDERR "exec @cmd failed: $!\n";
        POSIX::_exit(127);
    }

    my $self = bless {type => $type, name => $name, port => $port, pid => $pid,
                      cmd => \@cmd, log_file => $log, owner => $$}, $class;
    $Running{$pid} = $self;

    my $deadline = time + Goim::Time::scaled($o{timeout} // 10);
    while (1) {
        if (waitpid($pid, WNOHANG) == $pid) {
            my $st = $?;
            delete $Running{$pid};
            $self->{stopped} = 1;
            die "Goim::Daemon: @cmd exited during startup (status $st); $log ends with:\n"
                . $self->log_tail(30) . "\n";
        }
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                      Proto => 'tcp', Timeout => 1);
        if ($s) { close $s; last }
        if (time > $deadline) {
            kill 'KILL', $pid;
            waitpid $pid, 0;
            delete $Running{$pid};
            $self->{stopped} = 1;
            die "Goim::Daemon: @cmd did not listen on 127.0.0.1:$port within "
                . ($o{timeout} // 10) . " s; $log ends with:\n" . $self->log_tail(30) . "\n";
        }
        sleep 0.02;
    }
    $ENV{'TEST_NGINX_' . uc($type) . '_PORT'} = $port unless $o{no_env};
    return $self;
}

sub port     { $_[0]{port} }
sub pid      { $_[0]{pid} }
sub name     { $_[0]{name} }
sub addr     { "127.0.0.1:$_[0]{port}" }
sub log_file { $_[0]{log_file} }

sub log {
    my $self = shift;
    open my $fh, '<', $self->{log_file} or return '';
    local $/;
    my $t = <$fh>;
    return $t // '';
}

sub log_tail {
    my ($self, $n) = @_;
    my @l = split /\n/, $self->log;
    @l = @l[-($n // 20) .. -1] if @l > ($n // 20);
    return join "\n", @l;
}

# wait until the daemon's log matches $re (a qr// or a substring); true if
# it did (the timeout is scaled for slow runs, Goim::Time)
sub wait_for_log {
    my ($self, $re, $timeout) = @_;
    my $deadline = time + Goim::Time::scaled($timeout // 5);
    while (1) {
        my $log = $self->log;
        return 1 if ref $re ? $log =~ $re : index($log, $re) >= 0;
        return 0 if time > $deadline;
        sleep 0.05;
    }
}

sub running {
    my $self = shift;
    return 0 if $self->{stopped};
    if (waitpid($self->{pid}, WNOHANG) == $self->{pid}) {
        $self->{early_status} = $?;
        return 0;
    }
    return 1;
}

sub stop {
    my ($self, %o) = @_;
    return $self->{result} if $self->{stopped};
    $self->{stopped} = 1;
    my $pid = $self->{pid};
    delete $Running{$pid};
    my $label = "goim-$self->{type}" . ($self->{name} ne $self->{type} ? " ($self->{name})" : '');

    my ($status, $killed, $died_early) = ($self->{early_status}, 0, defined $self->{early_status});
    unless (defined $status) {
        kill 'TERM', $pid;
        my $deadline = time + Goim::Time::scaled($o{timeout} // 10);
        while (time < $deadline) {
            if (waitpid($pid, WNOHANG) == $pid) { $status = $?; last }
            sleep 0.02;
        }
        unless (defined $status) {
            kill 'KILL', $pid;
            waitpid $pid, 0;
            $status = $?;
            $killed = 1;
        }
    }
    my @bad;
    for my $line (split /\n/, $self->log) {
        push @bad, $line if grep { $line =~ $_ } @BadLogPatterns;
    }
    my $ok = !$killed && !$died_early && $status == 0 && !@bad;
    my $title = "$label stopped cleanly (exit status 0, no sanitizer report)";
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    if (tap_closed()) {    # END after done_testing(): no more tests, fail the exit code
        Test::More::diag(($ok ? 'ok' : 'NOT OK') . " - $title (after done_testing: call ->stop before it)");
        $FailedAfterDone = 1 unless $ok;
    } else {
        Test::More::ok($ok, $title);
    }
    unless ($ok) {
        Test::More::diag("$label: "
            . ($killed ? "did not exit within " . ($o{timeout} // 10) . " s of SIGTERM, killed"
               : $died_early ? "had already exited before stop (status $status)"
               : ($status & 127) ? "killed by signal " . ($status & 127)
               : $status ? "exit status " . ($status >> 8) : "sanitizer report in its log"));
        Test::More::diag("sanitizer report in $self->{log_file}:\n" . join("\n", @bad[0 .. ($#bad > 20 ? 20 : $#bad)]))
            if @bad;
        Test::More::diag("$self->{log_file} ends with:\n" . $self->log_tail(30));
    }
    $self->{exit_status} = $status;
    return $self->{result} = $ok;
}

sub exit_status { $_[0]{exit_status} }

# SIGKILL, as a crash: reaped, and no TAP test reported for it
sub crash {
    my $self = shift;
    return if $self->{stopped};
    kill 'KILL', $self->{pid};
    waitpid $self->{pid}, 0;
    delete $Running{$self->{pid}};
    $self->{stopped} = 1;
    $self->{result} = 1;
}

sub tap_closed {    # done_testing() already called?
    my $ctx = eval { Test::More->builder->ctx } or return 0;
    my $meta = $ctx->hub->meta('Test::Builder', {});
    $ctx->release;
    return $meta && $meta->{Done_Testing} ? 1 : 0;
}

END {
    my $st = $?;
    for my $d (sort { $b->{pid} <=> $a->{pid} } values %Running) {
        next if $d->{owner} != $$;
        $d->stop;
    }
    unlink $SecretFile if $SecretFile && $$ == $SecretOwner;
    $? = $st || ($FailedAfterDone ? 1 : 0);
}

1;

package Goim::Reload;

# Reloads of the test nginx, and who serves a client, for the hand-off's
# tests (nginx with a master: use Goim::Workers first).
#
#   Goim::Reload::master()          the master's pid
#   Goim::Reload::workers()         its children's pids, sorted
#   Goim::Reload::edit_conf($code)  runs $code on nginx.conf's text (in $_)
#                                   and writes it back, for the next reload
#   Goim::Reload::reload(workers => N, timeout => S)
#                                   HUP, then waits until none of the
#                                   workers before it is left and N new
#                                   ones run (N: the conf's
#                                   worker_processes); returns the new pids
#                                   or dies
#   Goim::Reload::hup()             HUP without waiting
#   Goim::Reload::owners($client)   the pids holding the server's side of a
#                                   Goim::Client's connection (from
#                                   /proc/net/tcp and /proc/PID/fd)
#   Goim::Reload::while_waiting($code)
#                                   $code runs on every poll of reload()'s
#                                   wait (the tests drain their clients)
#   my $g = Goim::Reload::stop_at($pid, $function)
#                                   gdb holds process $pid at $function's
#                                   next call (returns once the breakpoint
#                                   is set; dies without gdb or ptrace)
#   $g->wait_hit($timeout)          true once it is stopped there
#   $g->release                     lets it go on (gdb detaches)
#   $g->kill                        SIGKILLs it where it stopped

use strict;
use warnings;

use File::Temp qw(tempdir);
use POSIX ();
use Socket qw(sockaddr_in);
use Test::Nginx::Socket ();
use Goim::Time;

our $Poll;

sub while_waiting { $Poll = shift }

sub master {
    open my $fh, '<', $Test::Nginx::Socket::PidFile
        or die "Goim::Reload: no pid file: $!\n";
    chomp(my $pid = <$fh>);
    return $pid;
}

sub workers {
    my $master = master();
    my @pids;
    for my $stat (glob '/proc/[0-9]*/stat') {
        open my $fh, '<', $stat or next;
        my $line = <$fh> // next;
        # "pid (comm) state ppid": comm may hold spaces and parentheses
        next unless $line =~ /^(\d+) \(.*\) \S+ (\d+) /s;
        push @pids, $1 if $2 == $master;
    }
    return sort { $a <=> $b } @pids;
}

sub conf_file { Test::Nginx::Socket::server_root() . '/conf/nginx.conf' }

sub edit_conf {
    my $code = shift;
    my $file = conf_file();
    open my $in, '<', $file or die "Goim::Reload: $file: $!\n";
    local $_ = do { local $/; <$in> };
    close $in;
    $code->();
    open my $out, '>', $file or die "Goim::Reload: $file: $!\n";
    print $out $_;
    close $out;
}

sub conf_workers {
    open my $in, '<', conf_file() or die "Goim::Reload: nginx.conf: $!\n";
    my $text = do { local $/; <$in> };
    return $text =~ /^\s*worker_processes\s+(\d+)\s*;/m ? $1 : 1;
}

sub hup { CORE::kill 'HUP', master() or die "Goim::Reload: kill HUP: $!\n" }

sub reload {
    my %o = @_;
    my $want = $o{workers} // conf_workers();
    my %old = map { $_ => 1 } workers();
    hup();
    my @new;
    Goim::Time::wait_until(sub {
        $Poll->() if $Poll;
        my @now = workers();
        @new = grep { !$old{$_} } @now;
        return @new == $want && @now == $want;
    }, $o{timeout} // 20, 0.02)
        or die "Goim::Reload: the reload did not replace the workers ("
               . join(' ', workers()) . " running, " . scalar(@new)
               . " new of $want)\n";
    return @new;
}

# the socket inode of the server's end of a client's connection
sub server_inode {
    my $client = shift;
    my ($cport) = sockaddr_in(getsockname($client->sock));
    my ($sport) = sockaddr_in(getpeername($client->sock));
    for my $file ('/proc/net/tcp', '/proc/net/tcp6') {
        open my $fh, '<', $file or next;
        while (my $line = <$fh>) {
            my @f = split ' ', $line;
            next unless @f > 9 && $f[1] =~ /:([0-9A-F]{4})$/;
            my $local = hex $1;
            next unless $f[2] =~ /:([0-9A-F]{4})$/;
            my $remote = hex $1;
            return $f[9] if $local == $sport && $remote == $cport && $f[9];
        }
    }
    return undef;
}

sub owners {
    my $client = shift;
    my $inode = server_inode($client) // return ();
    my @pids;
    for my $pid (workers()) {
        for my $fd (glob "/proc/$pid/fd/*") {
            my $to = readlink $fd // next;
            if ($to eq "socket:[$inode]") {
                push @pids, $pid;
                last;
            }
        }
    }
    return @pids;
}

sub stop_at {
    my ($pid, $function) = @_;
    my $dir = tempdir(CLEANUP => 1);
    open my $fh, '>', "$dir/cmds" or die "Goim::Reload: $dir/cmds: $!\n";
    print $fh <<"_EOC_";
set pagination off
set confirm off
handle SIGPIPE SIGCHLD SIGIO SIGALRM SIGHUP SIGQUIT SIGUSR1 SIGUSR2 SIGTERM SIGWINCH nostop noprint pass
break $function
shell touch $dir/ready
continue
shell touch $dir/hit
shell while [ ! -e $dir/go ]; do sleep 0.02; done
detach
quit
_EOC_
    close $fh;
    my $gdb = fork // die "Goim::Reload: fork: $!\n";
    if ($gdb == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', "$dir/log";
        open STDERR, '>&', \*STDOUT;
        { exec 'gdb', '-q', '-nx', '-batch', '-p', $pid, '-x', "$dir/cmds" }
        POSIX::_exit(127);
    }
    my $self = bless {gdb => $gdb, pid => $pid, dir => $dir}, __PACKAGE__;
    unless (Goim::Time::wait_until(sub { -e "$dir/ready" || waitpid($gdb, POSIX::WNOHANG()) > 0 }, 30)
            && -e "$dir/ready")
    {
        my $log = $self->log;
        $self->release;
        die "Goim::Reload: gdb could not stop $pid at $function: $log\n";
    }
    return $self;
}

sub log {
    my $self = shift;
    open my $fh, '<', "$self->{dir}/log" or return '';
    local $/;
    return <$fh> // '';
}

sub wait_hit {
    my ($self, $timeout) = @_;
    return Goim::Time::wait_until(sub { -e "$self->{dir}/hit" }, $timeout // 10);
}

sub _end {
    my $self = shift;
    return unless $self->{gdb};
    open my $fh, '>', "$self->{dir}/go";
    close $fh;
    waitpid $self->{gdb}, 0;
    delete $self->{gdb};
}

sub release { $_[0]->_end }

sub kill {
    my $self = shift;
    CORE::kill 'KILL', $self->{pid};
    $self->_end;
}

sub DESTROY { $_[0]->_end }

1;

package Goim::Cli;

# build/goim-cli (clients/c) in Test::Nginx blocks.
#
#   --- init
#   Goim::Cli::start('c1', [qw(-p -d 5 -e 1 -r live://1)], auth => 1);
#   --- request
#   POST /goim/push/room?operation=1000&type=live&room=1
#   hi
#   --- goim_cli
#   c1 client=0 op=1000 seq=0 ver=1 body=hi
#   --- goim_cli_summary
#   c1 messages 1
#   c1 bad_packets 0
#
# start(NAME, ARGS, %opts) runs goim-cli ARGS 127.0.0.1:PORT (the comet TCP
# port, or with -w/--ws/--sse the test server's port) with stdout and stderr in
# t/servroot-cli/NAME.{out,err}, and waits until `auth => N` auth replies
# (op=8 lines: pass -p) or `wait => qr//` shows up on stdout (for at most
# `timeout => 5` s, scaled by Goim::Time for slow runs);
# wait_output(NAME, wait => qr//) waits the same way for a running NAME.  Checks done
# after the block's request (Goim::Cli::setup() registers them):
#   --- goim_cli        NAME LINE: LINE appears on NAME's stdout (LINE...:
#                       a line starting with LINE; looked at
#                       once NAME has exited, at most 10 s; clients print
#                       in any order)
#   --- goim_cli_summary NAME KEY VALUE: the summary NAME printed at exit
#                       (VALUE ">N": a number above N)
#   --- goim_cli_exit   NAME STATUS: NAME's exit status

use strict;
use warnings;

use File::Path qw(make_path);
use POSIX qw(WNOHANG);
use Test::More ();
use Test::Nginx::Socket ();
use Time::HiRes qw(sleep time);
use Goim::Time;

our $Dir = 't/servroot-cli';
our %Cli;

sub binary { ($ENV{GOIM_BUILD_DIR} // 'build') . '/goim-cli' }

sub setup {
    Test::Nginx::Socket::add_response_body_check(\&check);
}

sub slurp {
    my $f = shift;
    open my $fh, '<', $f or return '';
    local $/;
    my $t = <$fh>;
    return $t // '';
}

sub start {
    my ($name, $args, %o) = @_;
    my @args = @$args;
    my $ws = grep { $_ eq '-w' || $_ eq '--ws' || $_ eq '--sse' } @args;
    my $target = $o{target}
        // '127.0.0.1:' . ($ws ? Test::Nginx::Socket::server_port() : $ENV{TEST_NGINX_COMET_PORT});
    make_path($Dir);
    my ($out, $err) = ("$Dir/$name.out", "$Dir/$name.err");
    unlink $out, $err;

    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $out;
        open STDERR, '>', $err;
        exec(binary(), @args, $target) or POSIX::_exit(127);
    }
    $Cli{$name} = {pid => $pid, out => $out, err => $err};
    return wait_output($name, %o);
}

sub wait_output {
    my ($name, %o) = @_;
    my ($pid, $out) = @{$Cli{$name}}{qw(pid out)};
    my $deadline = time + Goim::Time::scaled($o{timeout} // 5);
    while (time < $deadline) {
        my $text = slurp($out);
        last if $o{auth} && (() = $text =~ /op=8 /g) >= $o{auth};
        last if $o{wait} && $text =~ $o{wait};
        last unless $o{auth} || $o{wait};
        last if waitpid($pid, WNOHANG) == $pid && ($Cli{$name}{status} = $? >> 8, 1);
        sleep 0.02;
    }
    return $Cli{$name};
}

sub finish {
    my ($name, $timeout) = @_;
    my $c = $Cli{$name} or return;
    return $c if defined $c->{status};
    my $deadline = time + Goim::Time::scaled($timeout // 10);
    while (time < $deadline) {
        if (waitpid($c->{pid}, WNOHANG) == $c->{pid}) {
            $c->{status} = $? >> 8;
            return $c;
        }
        sleep 0.02;
    }
    kill 'INT', $c->{pid};
    waitpid $c->{pid}, 0;
    $c->{status} = 'timeout';
    return $c;
}

sub summary {
    my $name = shift;
    my %s;
    for (split /\n/, slurp($Cli{$name}{err})) {
        $s{$1} = $2 if /^  (\w+)\s+(\S+)/;
    }
    return \%s;
}

sub check {
    my $block = shift;
    my $bname = $block->name;

    if (defined(my $spec = $block->goim_cli)) {
        for my $line (split /\n/, $spec) {
            my ($who, $want) = split /\s+/, $line, 2;
            $want =~ s/\s+$//;
            finish($who);
            my $out = slurp($Cli{$who}{out});
            my $at = $want =~ /^(.*)\.\.\.$/ ? ($out =~ /^\Q$1\E/m ? 0 : -1)
                   : index($out, "$want\n");
            Test::More::ok($at >= 0, "$bname - $who printed: $want")
                or Test::More::diag("$who stdout:\n$out\nstderr:\n" . slurp($Cli{$who}{err}));
        }
    }

    if (defined(my $spec = $block->goim_cli_summary)) {
        for my $line (split /\n/, $spec) {
            my ($who, $key, $want) = split /\s+/, $line;
            finish($who);
            my $got = summary($who)->{$key};
            if ($want =~ /^>(\d+(?:\.\d+)?)$/) {
                Test::More::ok(defined $got && $got > $1, "$bname - $who summary $key > $1")
                    or Test::More::diag("got " . ($got // 'nothing'));
            } else {
                Test::More::is($got, $want, "$bname - $who summary $key");
            }
        }
    }

    if (defined(my $spec = $block->goim_cli_exit)) {
        for my $line (split /\n/, $spec) {
            my ($who, $want) = split /\s+/, $line;
            Test::More::is(finish($who)->{status}, $want, "$bname - $who exit status");
        }
    }

    # every goim-cli that has exited: no sanitizer report (make test SANITIZE=1)
    for my $who (sort keys %Cli) {
        my $c = $Cli{$who};
        next if $c->{san_checked} || !defined $c->{status};
        $c->{san_checked} = 1;
        my @bad = grep { /ERROR: AddressSanitizer|runtime error:|LeakSanitizer/ }
                  split /\n/, slurp($c->{err});
        Test::More::ok(!@bad, "$bname - $who: no sanitizer report") or Test::More::diag(join "\n", @bad);
    }
}

END {
    for my $c (values %Cli) {
        next if defined $c->{status};
        kill 'INT', $c->{pid};
        waitpid $c->{pid}, 0;
    }
}

1;

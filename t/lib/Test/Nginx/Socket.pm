package Test::Nginx::Socket;

# A compact implementation of the subset of openresty's Test::Nginx::Socket
# that is documented at metacpan (Test::Nginx::Socket's POD), written for
# ngx_goim because the real one cannot be installed on our machines.  It is
# written from that documentation only; the block format (Test::Base), the
# exported functions, the sections and the TEST_NGINX_* environment variables
# behave as documented there, so every .t file stays valid for the real one.
#
# To run the suite with the real Test::Nginx instead, put its lib directory
# in front of ours: make test TEST_NGINX_LIB=/path/to/test-nginx/lib (or
# prove -I /path/to/test-nginx/lib -I t/lib -r t/ with the Makefile's
# TEST_NGINX_* environment).  Where the two could differ in what a test
# sees, this one does what the real one does: the preprocessor added last
# runs first; each request's error log check sees the lines logged since
# the previous check (error_log_data()); nginx stops when the next block
# restarts it or when the script ends, and --- shutdown_error_log is
# checked then; the exports, the globals in Test::Nginx::Socket and the
# TEST_NGINX_* variables set in the environment are the real one's.
#
# Differences on purpose: the default port is a free one (not 1984); nginx
# always runs in the foreground as our child (daemon off) so we get its exit
# status; under TEST_NGINX_USE_VALGRIND a valgrind finding is a test failure;
# [alert]/[crit]/[emerg] patterns listed in --- no_error_log are also checked
# against what nginx logs while shutting down; valgrind mode runs nginx
# without a master (the real one keeps master_on()'s workers, under
# valgrind).  Sections that the real one
# has but this one lacks (http2, curl, stap, udp/tcp_listen, ...) make the
# block fail loudly rather than pass silently.
#
# One file, over 1,000 lines, because the real one is one module of that
# name: tests and Test::Nginx::Util reach into its package globals.

use strict;
use warnings;

use Test::Base -base;

use Cwd ();
use Errno qw(EAGAIN EWOULDBLOCK EINTR);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use HTTP::Headers;
use IO::Select;
use IO::Socket::INET;
use List::Util qw(shuffle);
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);
use Time::Local qw(timelocal);

our $VERSION = '0.10';

# exactly what the real Test::Nginx::Socket exports to a test file
our @EXPORT = qw(
    env_to_nginx is_str plan run_tests repeat_each config_preamble
    worker_connections master_process_enabled no_long_string workers
    master_on master_off log_level no_shuffle no_root_location use_hup
    server_name server_addr server_root html_dir server_port
    server_port_for_client timeout no_nginx_manager check_accum_error_log
    add_block_preprocessor bail_out add_test_cleanup_handler
    add_cleanup_handler add_response_body_check no_diff
);

# Globals the real harness keeps in Test::Nginx::Util and does not import
# into Test::Nginx::Socket: a test that reads $Test::Nginx::Socket::ErrLogFile
# must fail here as it fails there (the log is server_root() . '/logs/...').
package Test::Nginx::Util;
our ($NginxBinary, $Workers, $WorkerConnections, $LogLevel, $NoRootLocation,
     $UseHup, $Verbose, $ConfDir, $HtmlDir, $LogDir, $ErrLogFile, $AccLogFile,
     $ErrLogFilePos, $TestNginxSleep, $Timeout, $CheckAccumErrLog);
package Test::Nginx::Socket;

# ... and the ones it has in both packages (aliased below)
our ($ServerPort, $ServerPortForClient, $ServerAddr, $ServerName, $PidFile,
     $ServRoot, $RepeatEach, $MasterProcessEnabled, $DaemonEnabled,
     $NoNginxManager, $NoLongString, $UseValgrind, $ConfigPreamble);

# ---------------------------------------------------------------- settings
my $cwd = Cwd::cwd();

$NginxBinary = $ENV{TEST_NGINX_BINARY} || 'nginx';
$RepeatEach = 1;
$Workers = 1;
$WorkerConnections = 64;
$LogLevel = $ENV{TEST_NGINX_LOG_LEVEL} || 'debug';
$MasterProcessEnabled = ($ENV{TEST_NGINX_MASTER_PROCESS} // 'off') eq 'on';
$DaemonEnabled = 0;    # nginx always runs in the foreground, as our child
our $NoShuffle = $ENV{TEST_NGINX_NO_SHUFFLE} ? 1 : 0;
$NoLongString = 0;
our $NoDiff = 0;
$NoRootLocation = 0;
$UseHup = $ENV{TEST_NGINX_USE_HUP} ? 1 : 0;
$UseValgrind = $ENV{TEST_NGINX_USE_VALGRIND};
$UseValgrind = undef if defined $UseValgrind && ($UseValgrind eq '' || $UseValgrind eq '0');
our $NoClean = $ENV{TEST_NGINX_NO_CLEAN} ? 1 : 0;
$NoNginxManager = $ENV{TEST_NGINX_NO_NGINX_MANAGER} ? 1 : 0;
$Verbose = $ENV{TEST_NGINX_VERBOSE} ? 1 : 0;
our $ForceRestart = $ENV{TEST_NGINX_FORCE_RESTART_ON_TEST} // 1;
$CheckAccumErrLog = 0;
$Timeout = $ENV{TEST_NGINX_TIMEOUT} || 3;
$ServerName = 'localhost';
$ServerAddr = '127.0.0.1';
$ConfigPreamble = '';
$TestNginxSleep = $ENV{TEST_NGINX_SLEEP} || 0.015;
our (@EnvToNginx, @BlockPreprocessors, @ResponseBodyChecks, @CleanupHandlers,
     @TestCleanupHandlers);

$ServRoot = $ENV{TEST_NGINX_SERVROOT}
    || ($ENV{TEST_NGINX_RANDOMIZE} ? "$cwd/t/servroot_$$" : "$cwd/t/servroot");
$ConfDir = "$ServRoot/conf";
$HtmlDir = "$ServRoot/html";
$LogDir = "$ServRoot/logs";
$ErrLogFile = "$LogDir/error.log";
$AccLogFile = "$LogDir/access.log";
$PidFile = "$LogDir/nginx.pid";
$ErrLogFilePos = 0;
$ServerPort = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT} || free_port();
$ServerPortForClient = $ENV{TEST_NGINX_CLIENT_PORT} || $ENV{TEST_NGINX_PORT}
    || $ServerPort;

# as the real one: the port and the server root are in the environment,
# the html directory is not ($TEST_NGINX_SERVER_ROOT/html in a config)
$ENV{TEST_NGINX_SERVER_PORT} = $ServerPort;
$ENV{TEST_NGINX_SERVER_ROOT} = $ServRoot;

# environment passed to nginx by default (as documented)
my @DefaultEnv = qw(MOCKEAGAIN_VERBOSE MOCKEAGAIN MOCKEAGAIN_WRITE_TIMEOUT_PATTERN
    LD_PRELOAD LD_LIBRARY_PATH DYLD_INSERT_LIBRARIES DYLD_FORCE_FLAT_NAMESPACE
    ASAN_OPTIONS MOCKNOEAGAIN_VERBOSE MOCKNOEAGAIN UBSAN_OPTIONS LSAN_OPTIONS);

# ------------------------------------------------------------ nginx state
my $OwnerPid = $$;
my $NginxPid;          # our child (nginx, or valgrind running nginx)
my $RunningConf;       # text of the config nginx runs with
my $RunningBlock;      # block whose checks apply when nginx stops
my $AccLogPos = 0;     # error_log_data()'s position is $ErrLogFilePos
my $PrevConfig;        # --- config reused by blocks without one
my %RandPorts;

# --------------------------------------------------------- configuration API
sub repeat_each { $RepeatEach = shift if @_; $RepeatEach }
sub no_shuffle { $NoShuffle = 1 }
sub no_long_string { $NoLongString = 1 }
{ no warnings 'redefine'; sub no_diff { $NoDiff = 1 } }    # Test::Base has one too
sub no_root_location { $NoRootLocation = 1 }
sub master_on { $MasterProcessEnabled = 1 }
sub master_off { $MasterProcessEnabled = 0 }
sub master_process_enabled { $MasterProcessEnabled = shift if @_; $MasterProcessEnabled }
sub workers { $Workers = shift if @_; $Workers }
sub worker_connections { $WorkerConnections = shift if @_; $WorkerConnections }
sub log_level { $LogLevel = shift if @_; $LogLevel }
sub timeout { $Timeout = shift if @_; $Timeout }
sub use_hup { $UseHup = 1 }
sub check_accum_error_log { $CheckAccumErrLog = 1 }
sub no_nginx_manager { $NoNginxManager = 1 }
sub config_preamble { $ConfigPreamble = shift if @_; $ConfigPreamble }
sub env_to_nginx { push @EnvToNginx, @_ }
# as in the real one: the preprocessor added last runs first, and so does
# the cleanup handler added last; body checks run in the order added
sub add_block_preprocessor { unshift @BlockPreprocessors, shift }
sub add_response_body_check { push @ResponseBodyChecks, shift }
sub add_cleanup_handler { unshift @CleanupHandlers, shift }
sub add_test_cleanup_handler { unshift @TestCleanupHandlers, shift }
sub server_name { $ServerName = shift if @_; $ServerName }
sub server_root { $ServRoot }
sub html_dir { $HtmlDir }
sub server_addr { $ServerAddr = shift if @_; $ServerAddr }

sub server_port {
    if (@_) { $ServerPort = shift; $ENV{TEST_NGINX_SERVER_PORT} = $ServerPort }
    $ServerPort;
}

sub server_port_for_client { $ServerPortForClient = shift if @_; $ServerPortForClient }

# the real harness keeps its globals and functions in Test::Nginx::Util
# (preprocessors call them there): alias them
{
    no strict 'refs';
    for my $sym (@EXPORT, qw(error_log_data access_log_data expand_env_in_config
                             parse_time)) {
        *{"Test::Nginx::Util::$sym"} = \&{"Test::Nginx::Socket::$sym"};
    }
    for my $var (qw(ServerPort ServerPortForClient ServerAddr ServerName PidFile
                    ServRoot RepeatEach MasterProcessEnabled DaemonEnabled
                    NoNginxManager NoLongString UseValgrind ConfigPreamble)) {
        *{"Test::Nginx::Util::$var"} = \${"Test::Nginx::Socket::$var"};
    }
}

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
    die "cannot find a free port\n";
}

sub bail_out {
    my $msg = shift;
    cleanup();
    Test::More::BAIL_OUT($msg);
}

# As the real one: the cleanup handlers run when run_tests() ends (or on
# bail_out), and nginx under valgrind is stopped then; otherwise nginx
# runs until the script ends (END), after whatever the script does past
# run_tests() (Goim::Stack::teardown() closing its clients, say), and the
# last block's --- shutdown_error_log is checked then.
sub cleanup {
    return if $$ != $OwnerPid;
    while (my $h = shift @CleanupHandlers) { $h->() }
    stop_nginx() if $UseValgrind;
}

END {
    my $status = $?;
    if ($$ == $OwnerPid) {
        cleanup();
        stop_nginx() unless $NoClean;
    }
    $? = $status;
}

# -------------------------------------------------------------- utilities
sub parse_time {
    my $t = shift;
    return undef unless defined $t && $t =~ /\S/;
    $t =~ s/^\s+|\s+$//g;
    return $1 / 1000 if $t =~ /^([\d.]+)\s*ms$/;
    return $1 if $t =~ /^([\d.]+)\s*s?$/;
    die "bad time value: $t\n";
}

sub expand_env_in_config {
    my $text = shift;
    return $text unless defined $text && !ref $text;
    $text =~ s{\$(TEST_NGINX_[_A-Z0-9]+)}{
        my $var = $1;
        if ($var =~ /^TEST_NGINX_RAND_PORT_\d+$/) {
            $RandPorts{$var} //= free_port();
        } elsif (defined $ENV{$var}) {
            $ENV{$var};
        } else {
            bail_out("No environment $var defined.");
        }
    }ge;
    return $text;
}

sub pick {    # a section value for the i-th request (array or scalar)
    my ($v, $i) = @_;    # call as pick(scalar $block->sec, $i)
    return ref $v eq 'ARRAY' ? $v->[$i] : $v;
}

sub patterns {    # error_log-like section value -> list of strings/regexes
    my $v = shift;
    return () unless defined $v;
    return @$v if ref $v eq 'ARRAY';
    return ($v) if ref $v;
    return grep { length } split /\n+/, $v;
}

sub is_str {
    my ($got, $expected, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    if (ref $expected eq 'Regexp') {
        return Test::More::like($got, $expected, $name);
    }
    if (!$NoLongString && defined $got && defined $expected) {
        require Test::LongString;
        return Test::LongString::is_string($got, $expected, $name);
    }
    if (!$NoDiff && defined $got && defined $expected && $got ne $expected
        && $expected =~ /\n./s)
    {
        require Text::Diff;
        Test::More::ok(0, $name);
        Test::More::diag(Text::Diff::diff(\$expected, \$got));
        return 0;
    }
    return Test::More::is($got, $expected, $name);
}

sub read_file_from {
    my ($file, $pos) = @_;
    open my $fh, '<', $file or return '';
    binmode $fh;
    seek $fh, $pos, 0 if $pos;
    local $/;
    my $data = <$fh>;
    return $data // '';
}

sub tail_of {
    my ($text, $n) = @_;
    my @l = split /\n/, $text // '';
    @l = @l[-$n .. -1] if @l > $n;
    return join "\n", @l;
}

my %NginxBuild;
sub nginx_build_info {
    return \%NginxBuild if %NginxBuild;
    my $out = `$NginxBinary -V 2>&1`;
    %NginxBuild = (text => $out // '');
    ($NginxBuild{version}) = ($out // '') =~ m{nginx/([\d.]+)};
    $NginxBuild{version} //= '0';
    return \%NginxBuild;
}

sub cmp_version {
    my @a = split /\./, shift;
    my @b = split /\./, shift;
    while (@a || @b) {
        my ($x, $y) = (shift(@a) // 0, shift(@b) // 0);
        return $x <=> $y if $x != $y;
    }
    return 0;
}

# ------------------------------------------------------------- nginx.conf
sub gen_config {
    my ($block, $config) = @_;
    my $master = ($MasterProcessEnabled || $UseHup) && !$UseValgrind;
    my $level = $block->log_level // $LogLevel;
    my $info = nginx_build_info()->{text};

    my $conf = '';
    for my $mod (split ' ', $ENV{TEST_NGINX_LOAD_MODULES} // '') {
        $conf .= "load_module $mod;\n";
    }
    $conf .= "daemon off;\nmaster_process " . ($master ? 'on' : 'off') . ";\n";
    $conf .= "worker_processes $Workers;\n";
    if ($master && $> == 0) {
        $conf .= "user " . ($ENV{TEST_NGINX_WORKER_USER} || 'root') . ";\n";
    }
    $conf .= "error_log $ErrLogFile $level;\npid $PidFile;\n";
    for my $e (@DefaultEnv, @EnvToNginx) {
        $conf .= $e =~ /\s/ ? "env '$e';\n" : "env $e;\n";
    }
    $conf .= "\nevents {\n    worker_connections $WorkerConnections;\n";
    $conf .= "    use $ENV{TEST_NGINX_EVENT_TYPE};\n" if $ENV{TEST_NGINX_EVENT_TYPE};
    $conf .= "}\n\n# main_config\n" . expand_env_in_config($block->main_config // '') . "\n";

    my @temp = ('client_body');
    for my $m (qw(proxy fastcgi uwsgi scgi)) {
        push @temp, $m unless $info =~ /--without-http[_-]${m}_module/;
    }
    $conf .= "http {\n    access_log $AccLogFile;\n    default_type text/plain;\n"
        . "    keepalive_timeout 68;\n";
    $conf .= "    ${_}_temp_path $ServRoot/${_}_temp;\n" for @temp;
    $conf .= "    postpone_output $ENV{TEST_NGINX_POSTPONE_OUTPUT};\n"
        if $ENV{TEST_NGINX_POSTPONE_OUTPUT};
    $conf .= "\n# http_config\n" . expand_env_in_config($block->http_config // '') . "\n";
    my $listen = $ServerPort . ($ENV{TEST_NGINX_REUSE_PORT} ? ' reuseport' : '');
    my $server_name = $block->server_name // $ServerName;
    $server_name =~ s/^\s+|\s+$//g;
    $conf .= "    server {\n        listen $listen;\n        server_name $server_name;\n"
        . "        client_max_body_size 30M;\n"
        . expand_env_in_config($ConfigPreamble) . "\n# config\n"
        . expand_env_in_config($config) . "\n";
    $conf .= "        location / {\n            root $HtmlDir;\n"
        . "            index index.html index.htm;\n        }\n" unless $NoRootLocation;
    $conf .= "    }\n}\n\n# post_main_config\n"
        . expand_env_in_config($block->post_main_config // '') . "\n";
    return $conf;
}

sub write_file {
    my ($file, $data) = @_;
    make_path(dirname($file));
    open my $fh, '>', $file or bail_out("cannot write $file: $!");
    binmode $fh;
    print $fh $data;
    close $fh;
}

sub write_user_files {
    my $block = shift;
    my $uf = $block->user_files;
    return unless defined $uf;
    my @files;
    if (ref $uf eq 'ARRAY') {
        @files = map { [@$_] } @$uf;
    } else {
        while ($uf =~ /^>>>[ \t]+(\S+)(?:[ \t]+(\S+))?[ \t]*\n(.*?)(?=^>>>[ \t]|\z)/gms) {
            push @files, [$1, $3, $2];
        }
    }
    for my $f (@files) {
        my ($name, $body, $mtime) = @$f;
        my $path = "$HtmlDir/$name";
        write_file($path, $body // '');
        if (defined $mtime && $mtime =~ /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(?:\.(\d\d))?$/) {
            my $t = timelocal($6 // 0, $5, $4, $3, $2 - 1, $1);
            utime $t, $t, $path;
        }
    }
}

sub prepare_servroot {
    remove_tree($ServRoot) if -d $ServRoot;
    make_path($ConfDir, $HtmlDir, $LogDir);
}

# -------------------------------------------------------- nginx processes
sub pid_alive {
    my $pid = shift;
    return 0 unless $pid && kill 0, $pid;
    if (open my $fh, '<', "/proc/$pid/stat") {
        my $stat = <$fh> // '';
        return 0 if $stat =~ /^\d+ \(.*\) [ZX]/;
    }
    return 1;
}

sub kill_stale_nginx {    # an nginx left behind by an earlier run in $ServRoot
    return unless -f $PidFile;
    my $pid = read_file_from($PidFile);
    return unless $pid =~ /^\s*(\d+)/;
    $pid = $1;
    return unless pid_alive($pid);
    my $cmd = read_file_from("/proc/$pid/cmdline");
    return unless $cmd =~ /nginx|valgrind/;
    warn "killing stale nginx (pid $pid) from an earlier run\n";
    for my $sig ('TERM', 'KILL') {
        kill $sig, $pid;
        for (1 .. 100) { last unless pid_alive($pid); sleep 0.03 }
        last unless pid_alive($pid);
    }
}

sub port_open {
    my $port = shift;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 1);
    return 0 unless $s;
    close $s;
    return 1;
}

sub nginx_cmd {
    my @cmd = ($NginxBinary, '-p', "$ServRoot/", '-c', "$ConfDir/nginx.conf");
    if ($UseValgrind) {
        my $opts = $UseValgrind =~ /^\d+$/ ? '--tool=memcheck --leak-check=full' : $UseValgrind;
        my @vg = ('valgrind', '-q', split(' ', $opts), '--gen-suppressions=all',
                  "--log-file=$LogDir/valgrind.%p.log");
        push @vg, "--suppressions=$cwd/valgrind.suppress" if -f "$cwd/valgrind.suppress";
        unshift @cmd, @vg;
    }
    return @cmd;
}

sub spawn {
    my @cmd = @_;
    my $pid = fork;
    bail_out("fork failed: $!") unless defined $pid;
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$LogDir/stderr.log";
        open STDERR, '>>', "$LogDir/stderr.log";
        exec(@cmd) or print STDERR "exec $cmd[0] failed: $!\n";
        POSIX::_exit(127);
    }
    return $pid;
}

sub start_nginx {
    my $name = shift;
    my @cmd = nginx_cmd();
    warn "starting: @cmd\n" if $Verbose;
    my $pid = spawn(@cmd);
    my $deadline = time + ($UseValgrind ? 60 : 10);
    while (1) {
        if (waitpid($pid, WNOHANG) == $pid) {
            my $st = $?;
            Test::More::diag(read_file_from("$LogDir/stderr.log")
                             . tail_of(read_file_from($ErrLogFile), 20));
            bail_out("$name - Cannot start nginx using command \"@cmd\" (status $st)");
        }
        last if -s $PidFile && port_open($ServerPort);
        if (time > $deadline) {
            kill 'KILL', $pid;
            waitpid $pid, 0;
            Test::More::diag(tail_of(read_file_from($ErrLogFile), 20));
            bail_out("$name - nginx did not come up on port $ServerPort");
        }
        sleep 0.01;
    }
    sleep $ENV{TEST_NGINX_SLEEP} if $ENV{TEST_NGINX_SLEEP};
    $NginxPid = $pid;
}

# stop nginx; the checks of the block it last ran are done on the log lines
# written while it was shutting down (and on the valgrind reports)
sub stop_nginx {
    return unless $NginxPid;
    my $pid = $NginxPid;
    undef $NginxPid;
    undef $RunningConf;
    my $block = $RunningBlock;
    undef $RunningBlock;
    my $name = $block ? $block->name : 'nginx';
    # what was logged since the block's last check, as the real one reads
    my $pos = $CheckAccumErrLog ? 0 : $ErrLogFilePos;

    my $exited = 0;
    my $status;
    for my $step (['QUIT', $UseValgrind ? 60 : 10], ['TERM', 5], ['KILL', 5]) {
        my ($sig, $wait) = @$step;
        kill $sig, $pid;
        my $deadline = time + $wait;
        while (time < $deadline) {
            if (waitpid($pid, WNOHANG) == $pid) { $exited = 1; $status = $?; last }
            sleep 0.01;
        }
        last if $exited;
        Test::More::diag("$name - nginx did not exit on SIG$sig") if $sig ne 'KILL';
    }
    return unless $block;
    if (!$exited || $status != 0) {
        Test::More::ok(0, "$name - nginx exited normally");
        Test::More::diag("nginx exit status: " . ($exited ? $status : 'did not exit'));
    }

    my @lines = split /\n/, read_file_from($ErrLogFile, $pos);
    unless ($UseHup) {
        check_log_patterns($name, 'shutdown_error_log', \@lines,
                           [patterns($block->shutdown_error_log)], 1, 'error.log');
        check_log_patterns($name, 'no_shutdown_error_log', \@lines,
                           [patterns($block->no_shutdown_error_log)], 0, 'error.log');
    }
    # severe levels the block forbids must not show up at exit either
    my @severe = grep { !ref && /^\[(?:alert|crit|emerg)\]$/ } patterns($block->no_error_log);
    for my $pat (@severe) {
        my @hit = grep { index($_, $pat) >= 0 } @lines;
        next unless @hit;
        Test::More::ok(0, "$name - pattern \"$pat\" should not match any line in error.log"
                          . " while nginx shuts down");
        Test::More::diag($hit[0]);
    }
    if ($UseValgrind) {
        my @reports;
        for my $f (glob "$LogDir/valgrind.*.log") {
            my $txt = read_file_from($f);
            push @reports, $txt if $txt =~ /\S/;
            unlink $f;
        }
        push @reports, join "\n", grep { /^==\d+==/ } split /\n/, read_file_from($ErrLogFile);
        @reports = grep { /\S/ } @reports;
        if (@reports) {
            Test::More::ok(0, "$name - valgrind reported problems");
            Test::More::diag(tail_of(join("\n", @reports), 200));
        }
    }
}

sub hup_reload {
    my $name = shift;
    my $pos = -s $ErrLogFile // 0;
    my $pid = read_file_from($PidFile);
    $pid = $pid =~ /(\d+)/ ? $1 : $NginxPid;
    kill 'HUP', $pid or bail_out("$name - failed to send HUP to nginx ($pid)");
    my $deadline = time + 5;
    while (time < $deadline) {
        my $new = read_file_from($ErrLogFile, $pos);
        last if $new =~ /start worker process/;
        if ($new =~ /\[emerg\]/ && !defined $RunningBlock->reload_fails) {
            bail_out("$name - reloading nginx failed: " . tail_of($new, 5));
        }
        sleep 0.02;
    }
    sleep 0.1;
    return $pos;
}

# ---------------------------------------------------------------- requests
sub parse_request_spec {    # "GET /uri [HTTP/x]\nbody" -> built request parts
    my ($block, $parts, $conn) = @_;
    my @parts = map { ref $_ eq 'HASH' ? {%$_} : {value => $_} } @$parts;
    my $first = $parts[0]{value} // '';
    $first = expand_env_in_config($first);
    $first =~ s/\A(?:[ \t]*(?:#[^\n]*)?\n)+//;
    $first =~ s/\A\s+//;
    my ($line, $rest) = $first =~ /\A([^\n]*)(?:\n(.*))?\z/s;
    $rest //= '';
    $line =~ s/\r$//;
    my ($meth, $uri, $proto) = $line =~ /^(\S+)(?:\s+(\S+))?(?:\s+(HTTP\/\S+))?\s*$/
        or bail_out($block->name . " - cannot parse the request line: $line");
    $uri //= '/';
    $proto //= 'HTTP/1.1';
    $parts[0]{value} = $rest;
    my $body = join '', map { $_->{value} } @parts;
    if ($parts[-1]{value} =~ s/\n\z//) { chop $body }

    my @hdrs;
    my %has;
    for my $h (split /\n/, expand_env_in_config($block->more_headers // '')) {
        next unless $h =~ /^\s*([^:\s][^:]*?)\s*:\s*(.*?)\s*$/;
        push @hdrs, "$1: $2";
        $has{lc $1} = 1;
    }
    unshift @hdrs, "Connection: $conn" unless $has{connection};
    unshift @hdrs, "Host: $ServerName" unless $has{host};
    if ((length $body || $meth =~ /^(?:POST|PUT)$/)
        && !$has{'content-length'} && !$has{'transfer-encoding'})
    {
        push @hdrs, "Content-Length: " . length $body;
    }
    $parts[0]{value} = "$meth $uri $proto\r\n" . join('', map { "$_\r\n" } @hdrs)
        . "\r\n" . $parts[0]{value};
    return (\@parts, $meth);
}

sub build_requests {    # -> list of {parts => [...], methods => [...]}
    my $block = shift;
    my $name = $block->name;
    if (defined(my $pr = $block->pipelined_requests)) {
        my @specs = ref $pr eq 'ARRAY' ? @$pr : ($pr);
        my ($data, @methods) = ('');
        for my $i (0 .. $#specs) {
            my ($p, $m) = parse_request_spec($block, [$specs[$i]],
                                             $i == $#specs ? 'close' : 'keep-alive');
            $data .= join '', map { $_->{value} } @$p;
            push @methods, $m;
        }
        return ({parts => [{value => $data}], methods => \@methods});
    }
    if (defined(my $raw = $block->raw_request)) {
        my @parts = ref $raw eq 'ARRAY' ? @$raw : ($raw);
        @parts = map { ref $_ eq 'HASH' ? {%$_} : {value => $_} } @parts;
        $_->{value} = expand_env_in_config($_->{value}) for @parts;
        my ($m) = ($parts[0]{value} // '') =~ /^\s*(\w+)/;
        return ({parts => \@parts, methods => [$m // '']});
    }
    my $req = $block->request;
    return () unless defined $req;
    my @reqs = ref $req eq 'ARRAY' ? @$req : ($req);
    return map {
        my ($p, $m) = parse_request_spec($block, ref $_ eq 'ARRAY' ? $_ : [$_], 'close');
        {parts => $p, methods => [$m]};
    } @reqs;
}

# send the parts (with delays) and read until EOF; timeout is per I/O event
sub send_and_receive {
    my ($parts, $timeout, $middle_delay, $shutdown) = @_;
    local $SIG{PIPE} = 'IGNORE';
    my $sock = IO::Socket::INET->new(PeerAddr => $ServerAddr, PeerPort => $ServerPortForClient,
                                     Proto => 'tcp', Timeout => $timeout)
        or return ('', "connect to $ServerAddr:$ServerPortForClient failed: $@");
    $sock->blocking(0);
    binmode $sock;
    my $sel = IO::Select->new($sock);
    my ($resp, $eof) = ('', 0);
    my $read = sub {
        while (1) {
            my $n = sysread $sock, my $buf, 65536;
            if (!defined $n) {
                return 1 if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
                $eof = 1;    # ECONNRESET and friends end the response
                return 0;
            }
            if ($n == 0) { $eof = 1; return 0 }
            $resp .= $buf;
        }
    };
    my $i = 0;
    PART: for my $part (@$parts) {
        my $delay = $part->{delay_before} // ($i++ ? $middle_delay : undef);
        sleep $delay if $delay;
        my ($buf, $off) = ($part->{value} // '', 0);
        while ($off < length $buf) {
            my ($r, $w) = IO::Select->select($sel, $sel, undef, $timeout);
            return ($resp, 'timeout') unless $r || $w;
            if ($r && @$r) { $read->(); last PART if $eof }
            next unless $w && @$w;
            my $n = syswrite $sock, $buf, length($buf) - $off, $off;
            if (!defined $n) {
                next if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
                last PART;    # the server closed: read what it said
            }
            $off += $n;
        }
    }
    shutdown($sock, $shutdown) if defined $shutdown;
    while (!$eof) {
        my @r = $sel->can_read($timeout);
        return ($resp, 'timeout') unless @r;
        $read->();
    }
    close $sock;
    return ($resp, undef);
}

sub decode_chunked {
    my $buf = shift;
    my $body = '';
    while ($$buf =~ s/\A([0-9a-fA-F]+)[^\r\n]*\r?\n//) {
        my $len = hex $1;
        if ($len == 0) { $$buf =~ s/\A(?:[^\r\n]+\r?\n)*\r?\n//; last }
        $body .= substr($$buf, 0, $len, '');
        $$buf =~ s/\A\r?\n//;
    }
    return $body;
}

sub parse_responses {
    my ($raw, $methods, $http09) = @_;
    if ($http09) {
        return ({code => 200, headers => HTTP::Headers->new, raw_headers => '', body => $raw});
    }
    my @res;
    my $buf = $raw;
    for my $meth (@$methods) {
        my $r = {headers => HTTP::Headers->new, raw_headers => '', body => ''};
        push @res, $r;
        unless ($buf =~ s{\A(HTTP/\d\.\d\s+(\d+)[^\r\n]*\r?\n)}{}) {
            $r->{body} = $buf;
            $r->{bad} = 1;
            last;
        }
        $r->{code} = $2;
        $r->{raw_headers} = $1;
        while (1) {
            if ($buf =~ s/\A(\r?\n)//) { $r->{raw_headers} .= $1; last }
            last unless $buf =~ s/\A([^\r\n]*\r?\n)//;
            my $l = $1;
            $r->{raw_headers} .= $l;
            $r->{headers}->push_header($1, $2) if $l =~ /^([^:\s]+)\s*:\s*(.*?)\s*$/;
        }
        my $code = $r->{code};
        if ($meth eq 'HEAD' || ($code >= 100 && $code < 200 && $code != 101)
            || $code == 204 || $code == 304)
        {
            next;
        }
        my $te = $r->{headers}->header('Transfer-Encoding') // '';
        my $cl = $r->{headers}->header('Content-Length');
        if ($code != 101 && $te =~ /chunked/i) {
            $r->{body} = decode_chunked(\$buf);
        } elsif ($code != 101 && defined $cl && $cl =~ /^\d+$/) {
            $r->{body} = substr($buf, 0, $cl, '');
        } else {
            ($r->{body}, $buf) = ($buf, '');
        }
    }
    return @res;
}

# ------------------------------------------------------------------ checks
sub check_log_patterns {
    my ($name, $section, $lines, $pats, $want, $file) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    for my $pat (@$pats) {
        my @hit = grep { ref $pat ? $_ =~ $pat : index($_, $pat) >= 0 } @$lines;
        if ($want) {
            Test::More::ok(scalar @hit, "$name - $section - pattern \"$pat\" matches a line in $file");
        } else {
            Test::More::ok(!@hit, "$name - $section - pattern \"$pat\" should not match any line in $file")
                or Test::More::diag("matched: $hit[0]");
        }
    }
}

sub check_response {
    my ($block, $res, $ri, $rep, $timed_out) = @_;
    my $name = $block->name;
    my $tag = "(req $rep" . ($ri ? ", sub req $ri" : '') . ")";
    my $code = $res->{code};

    if (defined(my $like = pick(scalar $block->error_code_like, $ri))) {
        Test::More::like($code // '', qr/$like/, "$name - status code ok $tag");
    } else {
        my $want = pick(scalar $block->error_code, $ri);
        $want = 200 unless defined $want && $want ne '';
        Test::More::is($code, $want, "$name - status code ok $tag");
    }

    if (defined(my $hs = pick(scalar $block->response_headers, $ri))) {
        for my $l (split /\n/, $hs) {
            next unless $l =~ /\S/;
            if ($l =~ /^\s*!\s*(\S+)\s*$/) {
                Test::More::ok(!defined $res->{headers}->header($1),
                               "$name - header $1 not present $tag");
            } elsif ($l =~ /^\s*([^:]+?)\s*:\s*(.*?)\s*$/) {
                Test::More::is(scalar $res->{headers}->header($1), $2,
                               "$name - header $1 ok $tag");
            }
        }
    }
    if (defined(my $hs = pick(scalar $block->response_headers_like, $ri))) {
        for my $l (split /\n/, $hs) {
            next unless $l =~ /^\s*([^:]+?)\s*:\s*(.*?)\s*$/;
            Test::More::like(scalar $res->{headers}->header($1) // '', qr/^$2$/,
                             "$name - header $1 like ok $tag");
        }
    }
    if (defined(my $p = pick(scalar $block->raw_response_headers_like, $ri))) {
        Test::More::like($res->{raw_headers}, qr/$p/s, "$name - raw resp headers like $tag");
    }
    if (defined(my $p = pick(scalar $block->raw_response_headers_unlike, $ri))) {
        Test::More::unlike($res->{raw_headers}, qr/$p/s, "$name - raw resp headers unlike $tag");
    }

    my $body = $res->{body};
    if (defined(my $want = pick(scalar $block->response_body, $ri))) {
        is_str($body, $want, "$name - response_body - response is expected $tag");
    } elsif (defined(my $e = $block->response_body_eval)) {
        my $want = eval $e;
        is_str($body, pick($want, $ri), "$name - response_body_eval - response is expected $tag");
    }
    if (defined(my $p = pick(scalar $block->response_body_like, $ri))) {
        Test::More::like($body // '', ref $p ? $p : qr/$p/s, "$name - response_body_like - response is expected $tag");
    }
    if (defined(my $p = pick(scalar $block->response_body_unlike, $ri))) {
        Test::More::unlike($body // '', ref $p ? $p : qr/$p/s, "$name - response_body_unlike - response is expected $tag");
    }
    for my $check (@ResponseBodyChecks) { $check->($block, $body, $ri, $rep, undef) }
}

# the error.log lines since the last call (since nginx started, for a
# block's first call), as the real one: it sleeps first, for what nginx
# logs after the response; check_accum_error_log() reads from the start
sub error_log_data {
    sleep $TestNginxSleep * 3;
    open my $fh, '<', $ErrLogFile or return undef;
    seek $fh, $ErrLogFilePos, 0 if !$CheckAccumErrLog && $ErrLogFilePos > 0;
    my @lines = <$fh>;
    $ErrLogFilePos = tell $fh unless $CheckAccumErrLog;
    close $fh;
    return \@lines;
}

sub access_log_data {
    sleep $TestNginxSleep * 3;
    open my $fh, '<', $AccLogFile or return undef;
    seek $fh, $AccLogPos, 0 if !$CheckAccumErrLog && $AccLogPos > 0;
    my @lines = <$fh>;
    $AccLogPos = tell $fh unless $CheckAccumErrLog;
    close $fh;
    return \@lines;
}

sub check_error_logs {
    my ($block, $rep) = @_;
    my $name = $block->name;
    my @lines = map { chomp; $_ } @{error_log_data() // []};
    check_log_patterns($name, 'error_log', \@lines, [patterns($block->error_log)], 1,
                       "error.log (req $rep)");
    check_log_patterns($name, 'no_error_log', \@lines, [patterns($block->no_error_log)], 0,
                       "error.log (req $rep)");
    if (defined(my $g = pick(scalar $block->grep_error_log, $rep))) {
        my $re = ref $g ? $g : qr/\Q$g\E/;
        my $out = '';
        for (@lines) { $out .= "$&\n" if /$re/ }
        my $want = pick(scalar $block->grep_error_log_out, $rep) // '';
        if (ref $want eq 'Regexp') {
            Test::More::like($out, $want, "$name - grep_error_log_out (req $rep)");
        } else {
            is_str($out, $want, "$name - grep_error_log_out (req $rep)");
        }
    }
    if (defined $block->access_log || defined $block->no_access_log) {
        my @acc = map { chomp; $_ } @{access_log_data() // []};
        check_log_patterns($name, 'access_log', \@acc, [patterns($block->access_log)], 1, 'access.log');
        check_log_patterns($name, 'no_access_log', \@acc, [patterns($block->no_access_log)], 0, 'access.log');
    }
}

# as the real one: each request is sent and its response checked before
# the next; the error log is checked after each (--- wait before each
# check), each check seeing the lines logged since the one before
sub run_block_once {
    my ($block, $rep) = @_;
    my $name = $block->name;
    my $timeout = parse_time($block->timeout) // parse_time($Timeout);
    my $delay = parse_time($block->raw_request_middle_delay);
    my $wait = parse_time($block->wait);
    my $shutdown = $block->shutdown;
    $shutdown = 1 if defined $shutdown && $shutdown !~ /\d/;
    my @reqs = build_requests($block);
    my $total = 0;
    $total += @{$_->{methods}} for @reqs;
    my $ri = 0;
    for my $req (@reqs) {
        my ($raw, $err) = send_and_receive($req->{parts}, $timeout, $delay, $shutdown);
        if (defined $err && $err eq 'timeout') {
            Test::More::fail("ERROR: client socket timed out - $name") unless defined $block->abort;
        } elsif (defined $err) {
            Test::More::fail("$name - $err");
        }
        for my $res (parse_responses($raw, $req->{methods}, defined $block->http09)) {
            check_response($block, $res, $ri, $rep) unless defined $block->ignore_response;
            if (++$ri < $total) {
                sleep $wait if $wait;
                check_error_logs($block, $rep);
            }
        }
    }
    sleep $wait if $wait;
    check_error_logs($block, $rep);
}

sub skip_count {    # skip_eval / skip_nginx / skip_nginx2 -> (count, reason)
    my $block = shift;
    if (defined(my $s = $block->skip_eval)) {
        my ($n, $code) = $s =~ /^\s*(\d+)\s*:\s*(.*?)\s*$/s or bail_out("bad skip_eval: $s");
        my $r = eval $code;
        bail_out($block->name . " - skip_eval failed: $@") if $@;
        return ($n, "skip_eval") if $r;
    }
    my $ver = sub {
        my ($op, $v) = @_;
        my $c = cmp_version(nginx_build_info()->{version}, $v);
        return $op eq '>' ? $c > 0 : $op eq '>=' ? $c >= 0 : $op eq '<' ? $c < 0
             : $op eq '<=' ? $c <= 0 : $c == 0;
    };
    if (defined(my $s = $block->skip_nginx)) {
        my ($n, $op, $v) = $s =~ /^\s*(\d+)\s*:\s*([<>=]+)\s*(\S+)/ or bail_out("bad skip_nginx: $s");
        return ($n, "nginx $op $v") if $ver->($op, $v);
    }
    if (defined(my $s = $block->skip_nginx2)) {
        my ($n, $o1, $v1, $andor, $o2, $v2)
            = $s =~ /^\s*(\d+)\s*:\s*([<>=]+)\s*(\S+)\s+(and|or)\s+([<>=]+)\s*(\S+)/
            or bail_out("bad skip_nginx2: $s");
        my ($a, $b) = ($ver->($o1, $v1), $ver->($o2, $v2));
        return ($n, "nginx $s") if $andor eq 'and' ? ($a && $b) : ($a || $b);
    }
    return ();
}

my @Unsupported = qw(http2 http3 curl stap stap_out udp_listen tcp_listen
                     response_body_filters);

sub run_test {
    my $block = shift;
    $_->($block) for @BlockPreprocessors;
    $block->set_value(name => "$0 " . $block->name);
    my $name = $block->name;

    for my $s (@Unsupported) {
        next unless defined $block->$s;
        Test::More::fail("$name - section --- $s is not supported by the t/lib harness");
        return;
    }
    if (my ($n, $why) = skip_count($block)) {
        SKIP: { Test::More::skip("$name - tests skipped due to $why", $n) }
        return;
    }

    my $config = $block->config;
    $config = $PrevConfig // '' unless defined $config;
    $PrevConfig = $config;
    my $conf = gen_config($block, $config);

    if (defined $block->must_die) {
        run_must_die($block, $conf) for 1 .. $RepeatEach;
        return;
    }

    # as the real one, a block's error log checks start at the beginning of
    # the log (nginx restarted for it, or the log is the same one when it
    # is not) unless HUP reloaded it (the real one starts a new log then)
    my ($errpos, $accpos) = (0, 0);
    if ($NoNginxManager) {
        # nginx is someone else's
    } elsif ($NginxPid && ($UseHup || (!$ForceRestart && ($RunningConf // '') eq $conf))) {
        write_user_files($block);
        ($errpos, $accpos) = (-s $ErrLogFile // 0, -s $AccLogFile // 0) if $UseHup;
        if ($RunningConf ne $conf) {
            write_file("$ConfDir/nginx.conf", $conf);
            $RunningBlock = $block;
            $errpos = hup_reload($name);
            $RunningConf = $conf;
        }
    } else {
        stop_nginx();
        kill_stale_nginx();
        prepare_servroot();
        write_user_files($block);
        write_file("$ConfDir/nginx.conf", $conf);
        start_nginx($name);
        $RunningConf = $conf;
    }
    $RunningBlock = $block;

    if (my $init = $block->init) {
        eval $init;
        bail_out("$name - init failed: $@") if $@;
    }
    ($ErrLogFilePos, $AccLogPos) = ($errpos, $accpos);

    for my $rep (0 .. $RepeatEach - 1) {
        run_block_once($block, $rep);
        if ($NginxPid && waitpid($NginxPid, WNOHANG) == $NginxPid) {
            Test::More::ok(0, "$name - nginx is still running after the request (status $?)");
            Test::More::diag(tail_of(read_file_from($ErrLogFile), 20));
            undef $NginxPid;
            undef $RunningBlock;
            last;
        }
    }

    # --- shutdown_error_log is checked when nginx stops: when the next
    # block restarts it, or at the end (see cleanup), as in the real one
    $_->($block) for @TestCleanupHandlers;
}

sub run_must_die {
    my ($block, $conf) = @_;
    my $name = $block->name;
    stop_nginx();
    kill_stale_nginx();
    prepare_servroot();
    write_user_files($block);
    write_file("$ConfDir/nginx.conf", $conf);
    my @cmd = ($NginxBinary, '-p', "$ServRoot/", '-c', "$ConfDir/nginx.conf");
    my $pid = spawn(@cmd);
    my $deadline = time + 10;
    my $status;
    while (time < $deadline) {
        if (waitpid($pid, WNOHANG) == $pid) { $status = $?; last }
        sleep 0.01;
    }
    if (!defined $status) {
        kill 'KILL', $pid;
        waitpid $pid, 0;
        Test::More::ok(0, "$name - die as expected");
    } elsif ((my $code = $block->must_die) =~ /^\s*(\d+)\s*$/) {
        Test::More::is($status >> 8, $1, "$name - die as expected");
    } else {
        Test::More::isnt($status, 0, "$name - die as expected");
    }
    my @lines = split /\n/, read_file_from("$LogDir/stderr.log") . read_file_from($ErrLogFile);
    check_log_patterns($name, 'error_log', \@lines, [patterns($block->error_log)], 1, 'error.log');
    check_log_patterns($name, 'no_error_log', \@lines,
                       [grep { $_ ne '[emerg]' } patterns($block->no_error_log)], 0, 'error.log');
}

sub run_tests {
    my @blocks = blocks();
    @blocks = shuffle @blocks unless $NoShuffle;
    kill_stale_nginx() unless $NoNginxManager;
    for my $block (@blocks) {
        run_test($block);
    }
    cleanup();
}

1;

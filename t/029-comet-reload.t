# nginx -s reload and -s quit with clients connected, without the reload
# hand-off (goim_comet_handoff off; t/067 tests it on): the old workers
# close their clients (WebSocket ones with 1001) and exit cleanly; clients
# that reconnect land in the new workers, where pushes reach them.
use strict;
use warnings;

BEGIN {
    if ($ENV{TEST_NGINX_USE_VALGRIND}) {
        print "1..0 # SKIP reloads need a master process, which valgrind "
              . "mode turns off\n";
        exit 0;
    }
}

use Test::Nginx::Socket 'no_plan';
use Goim::Stack;
use Goim::Client;
use Goim::Time;

master_on();
workers(2);

sub signal_master {
    my ($sig) = @_;
    open my $fh, '<', $Test::Nginx::Socket::PidFile or die "no pid file: $!";
    chomp(my $pid = <$fh>);
    kill $sig, $pid or die "kill $sig $pid: $!";
}

# The quit block comes first: --- shutdown_error_log is checked when nginx
# stops, which for the last block is when the script ends, after
# teardown() has closed the clients (both harnesses); here it is when the
# next block restarts nginx, with the client still connected.
# how many lines of this block's error.log match $re
sub logged {
    my ($re) = @_;
    open my $fh, '<', Test::Nginx::Socket::server_root() . '/logs/error.log' or return 0;
    my $n = grep { $_ =~ $re } <$fh>;
    return $n;
}

$Goim::Stack::MainConfig =~ s/^(\s*goim_comet_id [^;]*;)/$1\n    goim_comet_handoff off;/m;

Goim::Stack::setup();
run_tests();
Goim::Stack::teardown();

__DATA__

=== TEST 1: quit closes the clients and every worker exits
--- init
Goim::Stack::client('q', '{"mid":901,"accepts":[1000]}', 1);
--- request
GET /status
--- response_body_like chomp
"online":1
--- shutdown_error_log
worker is shutting down
--- no_shutdown_error_log
[alert]
[crit]



=== TEST 2: after a reload old clients are closed, reconnected ones get pushes
--- init
my $tok = '{"mid":900,"room_id":"live://90","accepts":[1000]}';
Goim::Stack::client('old', $tok, 1);
Goim::Stack::client('oldws', $tok, 1, transport => 'ws');
main::signal_master('HUP');
$Goim::Stack::Clients{old}{client}->wait_closed(Goim::Time::scaled(5));
$Goim::Stack::Clients{oldws}{client}->wait_closed(Goim::Time::scaled(5));
# the new workers are up and the old ones gone (2 + 2 started, 2 exited)
Goim::Time::wait_until(sub { main::logged(qr/start worker process \d+/) >= 4
                             && main::logged(qr/worker process \d+ exited with code 0/) >= 2 }, 10)
    or die "the reload did not replace the workers\n";
Goim::Stack::client('new', $tok, 2);
Goim::Stack::client('newws', $tok, 2, transport => 'ws');
--- request
POST /goim/push/room?operation=1000&type=live&room=90
after reload
--- response_body
{"code":0,"message":""}
--- goim_closed
old
oldws 1001
--- goim_auth
new op=8 seq=2 ver=1 body={"mid":900,"key":"<uuid>","room_id":"live://90"}
--- goim_receive
new op=1000 seq=0 ver=1 body=after reload
newws op=1000 seq=0 ver=1 body=after reload
--- error_log
gracefully shutting down
--- no_error_log
[alert]
[crit]
[emerg]

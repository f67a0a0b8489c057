# goim.js (clients/js) under node, without a browser: the codec, the
# backoff and the client's state machine against a fake WebSocket
# (t/js/goim.test.mjs).  The browser run is t/070-browser.t.
use strict;
use warnings;

use Test::More;

plan skip_all => 'no node' unless system('node --version >/dev/null 2>&1') == 0;

open my $run, '-|', 'node', 't/js/goim.test.mjs' or die "node: $!";
my $n = 0;
while (my $line = <$run>) {
    chomp $line;
    if ($line =~ /^ok (.*)/) { pass($1); $n++ }
    elsif ($line =~ /^not ok ([^:]*)(?:: (.*))?/) { fail($1); diag($2 // ''); $n++ }
    else { diag($line) }
}
close $run;
is($? >> 8, 0, 'node exited cleanly');
ok($n >= 10, "node reported its checks ($n)");
done_testing();

# No two files of a module call each other in a circle: the call graph
# between a module's objects (scripts/calls.sh, from what nm says each
# defines and needs) sorts topologically.  A deliberate upward call goes
# through a hook (a function pointer), which nm does not see.
use strict;
use warnings;
use Test::More;
use Cwd qw(abs_path);

my $objs = abs_path($ENV{GOIM_NGINX_OBJS}
                    || ($ENV{GOIM_BUILD_DIR} || 'build') . '/nginx/objs');
my $script = 'scripts/calls.sh';

for my $m (qw(comet logic)) {
    my $dir = "$objs/addon/ngx_goim_${m}_module";
    my @o = glob "$dir/*.o";
    ok(@o > 1, "$m: objects built in $dir") or next;

    my $graph = `sh $script $dir`;
    is($?, 0, "$m: $script runs");
    like($graph, qr/ -> /, "$m: its files call each other at all");

    my $cycle = `sh $script -c $dir 2>&1`;
    is($?, 0, "$m: no cycle between its files") or diag($cycle);
}

# the RPC layer both modules link (libgoim/nginx/): the same rule
{
    my $dir = "$objs/addon/nginx";
    my @o = glob "$dir/*.o";
    ok(@o > 1, "rpc: objects built in $dir");

    my $cycle = `sh $script -c $dir 2>&1`;
    is($?, 0, "rpc: no cycle between its files") or diag($cycle);
}

done_testing();

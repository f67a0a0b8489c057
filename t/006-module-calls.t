# No two files of a module call each other in a circle: the call graph
# between a module's objects (scripts/calls.sh, from what nm says each
# defines and needs) sorts topologically.  A deliberate upward call goes
# through a hook (a function pointer), which nm does not see.
use strict;
use warnings;
use Test::More;
use Cwd qw(abs_path);

# the modules' objects: the Makefile says where (the same with SANITIZE=1,
# whose nginx runs under valgrind with the modules built as usual)
my $objs = abs_path($ENV{GOIM_NGINX_OBJS} || 'build/nginx/objs');
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

# the stream modules and each module's core include no http header: an
# nginx with only a stream {} block must not need http's code
for my $f (glob('ngx_goim_*_module/ngx_stream_*.[ch]'),
           glob('ngx_goim_*_module/ngx_goim_*.[ch]'), glob('libgoim/nginx/*.[ch]')) {
    open my $fh, '<', $f or die "$f: $!\n";
    my @http = grep { /^\s*#\s*include\s*[<"]ngx_http/ } <$fh>;
    is(scalar @http, 0, "$f includes no http header") or diag(@http);
}

done_testing();

# Runs every libFuzzer target built (build/fuzz/fuzz_*: the goim packet,
# WebSocket frame and RPC frame parsers, the daemons' RPC read buffer,
# every RPC message a listener decodes, the push API's arguments, and
# whatever target is added) for a bounded time each: GOIM_FUZZ_SECONDS
# (default 8, so the whole file stays near a minute).  Each starts from
# the seeds committed in libgoim/fuzz/corpus/<target>/ (read only) and
# keeps what it finds in build/fuzz/corpus-<target>/.  Any crash,
# overread, leak or UB finding fails the test; the input that caused it
# is left in build/fuzz/ (crash-*).
use strict;
use warnings;
use Cwd qw(abs_path);
use Test::More;

my $build = $ENV{GOIM_BUILD_DIR} || 'build';
my $seconds = $ENV{GOIM_FUZZ_SECONDS} || 8;
my $seeds = abs_path('libgoim/fuzz/corpus');
my @targets = sort glob("$build/fuzz/fuzz_*");
@targets = grep { -x $_ && !/\.\w+$/ } @targets;

plan skip_all => "no fuzz targets built in $build/fuzz" unless @targets;

for my $t (@targets) {
    (my $name = $t) =~ s{.*/}{};
    my $corpus = "$build/fuzz/corpus-$name";
    mkdir $corpus;
    my $dirs = "corpus-$name";
    $dirs .= " $seeds/$name" if -d "$seeds/$name";
    my $out = `cd $build/fuzz && ./$name -max_total_time=$seconds -rss_limit_mb=1024 $dirs 2>&1`;
    my $rc = $? >> 8;
    my ($runs) = $out =~ /Done (\d+) runs/;
    ok($rc == 0 && $runs, "$name: " . ($runs // 0) . " runs in ${seconds}s, no finding")
        or diag(join "\n", (split /\n/, $out)[-30 .. -1]);
}

done_testing();

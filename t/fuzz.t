# Runs the libFuzzer targets of the client-facing parsers (goim packets,
# WebSocket frames) for a bounded time each: GOIM_FUZZ_SECONDS (default 10).
# Any crash, overread, leak or UB finding fails the test; the input that
# caused it is left in build/fuzz/ (crash-*).
use strict;
use warnings;
use Cwd ();
use Test::More;

my $build = $ENV{GOIM_BUILD_DIR} || 'build';
my $seconds = $ENV{GOIM_FUZZ_SECONDS} || 10;
my @targets = sort glob("$build/fuzz/fuzz_*");
@targets = grep { -x $_ && !/\.\w+$/ } @targets;

plan skip_all => "no fuzz targets built in $build/fuzz" unless @targets;

for my $t (@targets) {
    (my $name = $t) =~ s{.*/}{};
    my $corpus = "$build/fuzz/corpus-$name";
    mkdir $corpus;
    # seeds kept in the repository (libgoim/fuzz/corpus/NAME), read only
    my $seeds = -d "libgoim/fuzz/corpus/$name" ? Cwd::abs_path("libgoim/fuzz/corpus/$name") : '';
    my $out = `cd $build/fuzz && ./$name -max_total_time=$seconds -rss_limit_mb=1024 corpus-$name $seeds 2>&1`;
    my $rc = $? >> 8;
    my ($runs) = $out =~ /Done (\d+) runs/;
    ok($rc == 0 && $runs, "$name: " . ($runs // 0) . " runs in ${seconds}s, no finding")
        or diag(join "\n", (split /\n/, $out)[-30 .. -1]);
}

done_testing();

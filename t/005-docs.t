# The reference docs against the code, so they cannot drift: every
# directive in the modules' command tables has its section (syntax,
# default, context) in docs/directives.md and every section there names a
# real directive; every option a daemon's --help lists is in its README;
# every goim-cli option is in clients/c/README.md.
use strict;
use warnings;

use Test::More;

sub slurp {
    my $f = shift;
    open my $fh, '<', $f or die "$f: $!";
    local $/;
    return scalar <$fh>;
}

my %code;    # directive => file
for my $file (glob 'ngx_goim_*_module/*.c') {
    my $src = slurp($file);
    while ($src =~ /ngx_command_t\s+\w+\[\]\s*=\s*\{(.*?)ngx_null_command/sg) {
        my $table = $1;
        $code{$1} = $file while $table =~ /ngx_string\("(\w+)"\)/g;
    }
}
ok(keys %code >= 10, 'directives found in the modules\' command tables: ' . scalar keys %code);

my $doc = slurp('docs/directives.md');
my %doc;
while ($doc =~ /^### (\S+)\n(.*?)(?=^##|\z)/msg) {
    $doc{$1} = $2;
}

for my $d (sort keys %code) {
    my $sec = $doc{$d};
    ok(defined $sec, "$d ($code{$d}) has a section in docs/directives.md") or next;
    like($sec, qr/^\s+Syntax:\s+\Q$d\E\b.*\n\s+Default:.*\n\s+Context:/m,
         "$d: its section gives syntax, default and context");
}
for my $d (sort grep { /^goim_/ } keys %doc) {
    ok($code{$d}, "docs/directives.md: $d is a directive in the code");
}

my $build = $ENV{GOIM_BUILD_DIR} // 'build';
for my $prog (['goim-router', 'goim-router/README.md'], ['goim-job', 'goim-job/README.md'],
              ['goim-cli', 'clients/c/README.md']) {
    my ($name, $readme) = @$prog;
    my $bin = "$build/$name";
    SKIP: {
        skip "$bin is not built", 1 unless -x $bin;
        my $help = `$bin --help 2>&1`;
        my %flags = map { $_ => 1 } $help =~ /(?:^|[\s,])(--[a-z][a-z0-9-]+)/g;
        ok(keys %flags >= 3, "$name --help lists its options") or next;
        my $text = slurp($readme);
        for my $f (sort keys %flags) {
            ok(index($text, "`$f") >= 0 || index($text, " $f") >= 0, "$name $f is documented in $readme");
        }
    }
}

done_testing();

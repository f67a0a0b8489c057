# Every directive the modules parse is documented in docs/directives.md
# (with Syntax, Default and Context lines), and every documented one is
# parsed: the two lists kept in step.
use strict;
use warnings;

use Test::Nginx::Socket 'no_plan';

our (%Parsed, %Documented);

for my $f (glob('ngx_goim_*_module/*.c')) {
    open my $fh, '<', $f or die "$f: $!\n";
    local $/;
    my $src = <$fh>;
    $Parsed{$1} = $f while $src =~ /\{\s*ngx_string\("(goim_\w+)"\),\s*NGX_/g;
}

{
    open my $fh, '<', 'docs/directives.md' or die "directives.md: $!\n";
    local $/;
    my $doc = <$fh>;
    while ($doc =~ /^### (goim_\w+)\n\n((?:    .*\n)+)/mg) {
        my ($name, $head) = ($1, $2);
        $Documented{$name} = $head =~ /Syntax:.*\n.*Default:.*\n.*Context:/ ? 1 : 0;
    }
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: parsed and documented alike
--- init
Test::More::cmp_ok(scalar keys %main::Parsed, '>', 30, 'TEST 1 - the directives were found');
for my $d (sort keys %main::Parsed) {
    Test::More::ok(exists $main::Documented{$d}, "TEST 1 - $d ($main::Parsed{$d}) is documented");
    Test::More::ok($main::Documented{$d}, "TEST 1 - $d has Syntax, Default and Context")
        if exists $main::Documented{$d};
}
for my $d (sort keys %main::Documented) {
    Test::More::ok(exists $main::Parsed{$d}, "TEST 1 - documented $d is parsed");
}
--- config
    location = /t {
        return 200 "ok\n";
    }
--- request
GET /t
--- response_body
ok

# Both modules load into Debian's stock nginx after the stream core, each
# alone and together in either order, and export nothing that could clash.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);

my $nginx = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
use Cwd qw(abs_path);
my $objs = abs_path($ENV{GOIM_NGINX_OBJS} || 'build/nginx/objs');
my %so = map { $_ => "$objs/ngx_goim_${_}_module.so" } qw(comet logic);
my $stream = '/usr/lib/nginx/modules/ngx_stream_module.so';

for my $m (sort keys %so) {
    ok(-f $so{$m}, "$so{$m} is built") or BAIL_OUT("build the modules first");
}

my $dir = tempdir(CLEANUP => 1);
mkdir "$dir/logs";

for my $set (['comet'], ['logic'], ['comet', 'logic'], ['logic', 'comet']) {
    open my $fh, '>', "$dir/nginx.conf" or die $!;
    print $fh "load_module $stream;\n";
    print $fh "load_module $so{$_};\n" for @$set;
    print $fh "error_log $dir/logs/error.log;\npid $dir/nginx.pid;\nevents {}\n";
    close $fh;
    my $out = `$nginx -t -p $dir -c $dir/nginx.conf 2>&1`;
    is($?, 0, "nginx -t with @$set") or diag($out);
}

# only the module tables and the module structs may be exported
for my $m (sort keys %so) {
    my @syms = grep { !/^(ngx_modules|ngx_module_names|ngx_module_order|ngx_(http|stream)_goim_\w+_module)$/ }
               map { (split)[2] } grep { /\s[A-Z]\s/ } `nm -D --defined-only $so{$m}`;
    is("@syms", '', "$m exports no library symbols");
}

done_testing();

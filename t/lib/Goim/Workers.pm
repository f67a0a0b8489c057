package Goim::Workers;

# For test files that run nginx with a master and several workers:
#
#   use Goim::Workers;          # first, before Test::Nginx::Socket
#   Goim::Workers::reuseport(); # before Goim::Stack::setup()
#
# valgrind mode (TEST_NGINX_USE_VALGRIND) runs nginx without a master, so
# there are no workers to test: the whole file is skipped, with the
# reason, before Test::Nginx starts anything.  reuseport() gives the
# stack's comet and push listeners reuseport, so the kernel spreads the
# connections over the workers.

use strict;
use warnings;

sub import {
    return unless $ENV{TEST_NGINX_USE_VALGRIND};
    print "1..0 # SKIP several workers need a master process, which "
          . "valgrind mode turns off\n";
    exit 0;
}

sub reuseport {
    Test::Nginx::Socket::add_block_preprocessor(sub {
        my $block = shift;
        (my $main = $Goim::Stack::MainConfig) =~ s/(listen 127\.0\.0\.1:\$TEST_NGINX_(?:COMET|PUSH)_PORT)/$1 reuseport/g;
        # the stack's preprocessor, added after this one, runs first (as in
        # the real Test::Nginx) and has set its own main_config: replace it
        $block->set_value('main_config', $main)
            if ($block->main_config // $Goim::Stack::MainConfig) eq $Goim::Stack::MainConfig;
    });
}

1;

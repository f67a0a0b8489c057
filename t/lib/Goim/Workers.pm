package Goim::Workers;

# For test files that run nginx with a master and several workers:
#
#   use Goim::Workers;      # first, before Test::Nginx::Socket
#
# valgrind mode (TEST_NGINX_USE_VALGRIND) runs nginx without a master, so
# there are no workers to test: the whole file is skipped, with the
# reason, before Test::Nginx starts anything.

use strict;
use warnings;

sub import {
    return unless $ENV{TEST_NGINX_USE_VALGRIND};
    print "1..0 # SKIP several workers need a master process, which "
          . "valgrind mode turns off\n";
    exit 0;
}

1;

package Test::Nginx::Util;

# Compatibility shim for code written against the real Test::Nginx::Util
# (e.g. $Test::Nginx::Util::ServerPort, error_log_data() or
# expand_env_in_config() in block preprocessors): the t/lib harness lives
# in Test::Nginx::Socket, which keeps or aliases these in this package.

use strict;
use warnings;

require Test::Nginx::Socket;
require Exporter;

our @ISA = ('Exporter');
our @EXPORT = (@Test::Nginx::Socket::EXPORT,
               qw(error_log_data access_log_data expand_env_in_config parse_time));

1;

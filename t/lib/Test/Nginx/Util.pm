package Test::Nginx::Util;

# Compatibility shim for code written against the real Test::Nginx::Util
# (e.g. $Test::Nginx::Util::ServerPort or expand_env_in_config() in block
# preprocessors): the t/lib harness lives in Test::Nginx::Socket, which
# aliases its functions and globals into this package.

use strict;
use warnings;

require Test::Nginx::Socket;
require Exporter;

our @ISA = ('Exporter');
our @EXPORT = @Test::Nginx::Socket::EXPORT;

1;

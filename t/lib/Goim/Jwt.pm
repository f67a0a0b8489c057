package Goim::Jwt;

# Signed tokens for the tests of goim_logic_jwt_secret_file: a secret file
# with a random secret, the stack's main config naming it, and HS256 JWTs
# signed with it.
#
#   use Goim::Jwt;          # writes the file, sets $TEST_NGINX_JWT_FILE
#   Goim::Jwt::setup();     # before Goim::Stack::setup(): every block's
#                           # main_config gains the directive
#   Goim::Jwt::token($claims, header => '{"alg":...}', secret => '...')
#
# $Goim::Jwt::Secret is the secret the file holds.

use strict;
use warnings;

use Digest::SHA qw(hmac_sha256);
use File::Temp qw(tempdir);
use MIME::Base64 qw(encode_base64url);
use Test::Nginx::Socket ();

our $Secret = 'jwt-secret-' . int(rand(1e9));
our $Dir = tempdir(CLEANUP => 1);

$ENV{TEST_NGINX_JWT_FILE} = "$Dir/jwt.key";

{
    open my $fh, '>', $ENV{TEST_NGINX_JWT_FILE} or die "Goim::Jwt: $!\n";
    print $fh "$Secret\n";
}

sub token {
    my ($claims, %o) = @_;
    my $header = $o{header} // '{"alg":"HS256","typ":"JWT"}';
    my $signing = encode_base64url($header) . '.' . encode_base64url($claims);
    return $signing . '.'
           . encode_base64url(hmac_sha256($signing, $o{secret} // $Secret));
}

# added before the stack's preprocessor, this one runs after it (the last
# added runs first) and so sees the main_config the stack gave the block
sub setup {
    Test::Nginx::Socket::add_block_preprocessor(sub {
        my $block = shift;
        (my $main = $Goim::Stack::MainConfig)
            =~ s/(goim_logic_router)/goim_logic_jwt_secret_file \$TEST_NGINX_JWT_FILE;\n    $1/;
        $block->set_value('main_config', $main);
    });
}

1;

package Goim::Stream;

# Block preprocessors for ngx_goim's Test::Nginx files.
#
# 1. stream_block(): maps the stream-lua-style sections of
#    Test::Nginx::Socket::Lua::Stream onto plain Test::Nginx::Socket ones
#    (that module needs the Lua module, which we don't have):
#      --- stream_config          -> inside  stream { ... }      (main_config)
#      --- stream_server_config   -> inside  stream { server { listen PORT; ... } }
#      --- stream_request         -> --- raw_request (string or eval'd chunks)
#      --- stream_response        -> --- response_body
#      --- stream_response_like   -> --- response_body_like
#      --- stream_response_unlike -> --- response_body_unlike
#    plus --- http09 (the whole raw reply is the body), an empty --- config
#    when the block has none, and the client pointed at the stream port with
#    server_port_for_client().  Blocks without stream sections get the client
#    port set back to server_port().  PORT is $TEST_NGINX_STREAM_PORT (a free
#    port picked at load time unless set).  Use --- timeout: 0.5 with
#    --- abort for connections the server keeps open.
#
# 2. add_default_no_error_log(): adds [alert], [crit] and [emerg] to the
#    block's --- no_error_log (string or eval'd array), except for levels the
#    block expects in --- error_log ([emerg] is left out for --- must_die).
#
# Usage (works with the real Test::Nginx::Socket too):
#     use Test::Nginx::Socket 'no_plan';
#     use Goim::Stream;
#     Goim::Stream::setup();   # registers both preprocessors
#     run_tests();

use strict;
use warnings;

use Exporter 'import';
use IO::Socket::INET;
use Test::Nginx::Socket ();
use Goim::Daemon ();

our @EXPORT_OK = qw(setup stream_block add_default_no_error_log stream_port);
our @DefaultNoErrorLog = ('[alert]', '[crit]', '[emerg]');

$ENV{TEST_NGINX_STREAM_PORT} ||= Goim::Daemon::free_port();

sub stream_port { $ENV{TEST_NGINX_STREAM_PORT} }

my @StreamSections = qw(stream_config stream_server_config stream_request
                        stream_response stream_response_like stream_response_unlike);

sub stream_block {
    my $block = shift;
    unless (grep { defined $block->$_ } @StreamSections) {
        Test::Nginx::Socket::server_port_for_client(Test::Nginx::Socket::server_port());
        return 0;
    }
    my $port = stream_port();
    my $main = $block->main_config // '';
    my $sc = $block->stream_config // '';
    my $ssc = $block->stream_server_config // '';
    $block->set_value(main_config => "$main\nstream {\n$sc\n    server {\n"
                      . "        listen $port;\n$ssc\n    }\n}\n");
    $block->set_value(config => '') unless defined $block->config;
    unless (defined $block->raw_request) {
        my $req = $block->stream_request;
        $block->set_value(raw_request => defined $req ? $req : '');
    }
    $block->set_value(http09 => '');
    my %map = (stream_response => 'response_body',
               stream_response_like => 'response_body_like',
               stream_response_unlike => 'response_body_unlike');
    for my $from (sort keys %map) {
        my $v = $block->$from;
        $block->set_value($map{$from} => $v) if defined $v;
    }
    Test::Nginx::Socket::server_port_for_client($port);
    return 1;
}

sub add_default_no_error_log {
    my ($block, @pats) = @_;
    @pats = @DefaultNoErrorLog unless @pats;
    my @expected = grep { !ref } do {
        my $e = $block->error_log;
        !defined $e ? () : ref $e eq 'ARRAY' ? @$e : ref $e ? () : split /\n+/, $e;
    };
    @pats = grep { my $p = $_; !grep { index($_, $p) >= 0 } @expected } @pats;
    @pats = grep { $_ ne '[emerg]' } @pats if defined $block->must_die;
    my $cur = $block->no_error_log;
    if (!defined $cur || (!ref $cur && $cur !~ /\S/)) {
        $block->set_value(no_error_log => join('', map { "$_\n" } @pats)) if @pats;
    } elsif (ref $cur eq 'ARRAY' || ref $cur eq 'Regexp') {
        my @have = ref $cur eq 'ARRAY' ? @$cur : ($cur);
        my @new = grep { my $p = $_; !grep { !ref && $_ eq $p } @have } @pats;
        $block->set_value(no_error_log => [@have, @new]);
    } else {
        my %have = map { $_ => 1 } split /\n+/, $cur;
        $cur .= "\n" unless $cur =~ /\n\z/;
        $cur .= join '', map { "$_\n" } grep { !$have{$_} } @pats;
        $block->set_value(no_error_log => $cur);
    }
}

sub setup {
    my %opts = @_;
    my @pats = @{$opts{no_error_log} || \@DefaultNoErrorLog};
    Test::Nginx::Socket::add_block_preprocessor(sub {
        my $block = shift;
        stream_block($block);
        add_default_no_error_log($block, @pats) unless $opts{no_default_error_log};
    });
}

1;

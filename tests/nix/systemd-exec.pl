#!/usr/bin/env perl
# systemd-exec.pl CREDENTIALS_DIR 'ExecStart value' [NAME=VALUE...]
#
# Turns the value of an ExecStart= line into the argument vector systemd
# would execute, following the rules systemd documents, and prints it
# NUL-separated (the executable first). The tests run what it prints, so
# that a command line the modules render is executed the way systemd
# would execute it, without a booted systemd. The rules, in systemd's
# order:
#
#  1. Words (systemd.syntax(7), "Quoting"): separated by whitespace; a
#     word may be quoted with "…" or '…', quotes may begin in the middle
#     of a word and the quoted part joins it; a backslash starts a C
#     escape (\a \b \f \n \r \t \v \\ \" \' \s, \xHH, \NNN octal,
#     \uHHHH, \UHHHHHHHH) in or out of quotes. An unquoted `;` word would
#     separate commands, and a first word starting with - @ : + ! carries
#     flags: both are refused here, the modules never mean them.
#  2. Specifiers (systemd.unit(5), "Specifiers") in every word: `%%` is
#     `%`, `%d` the credentials directory; any other specifier is refused
#     (the modules escape every `%` they do not mean).
#  3. Variables (systemd.service(5), "Command lines") in the arguments,
#     not in the executable's path: `$$` is `$`, `${NAME}` is NAME's value
#     (one word), a whole word `$NAME` is NAME's value split at
#     whitespace; any other `$` stays. The environment is the NAME=VALUE
#     arguments (the unit's Environment=).
use strict;
use warnings;

my ($creds, $line, @env) = @ARGV;
defined $line or die "usage: $0 CREDENTIALS_DIR 'ExecStart value' [NAME=VALUE...]\n";
my %env = map { /^([^=]+)=(.*)$/s ? ($1, $2) : die "bad environment entry $_\n" } @env;

my %simple = (a => "\a", b => "\b", f => "\f", n => "\n", r => "\r", t => "\t", v => "\x0b",
  '\\' => '\\', '"' => '"', "'" => "'", s => ' ');

# unescape reads one C escape after a backslash at position $i of $s and
# returns the character and the new position.
sub unescape {
  my ($s, $i) = @_;
  my $c = substr($s, $i, 1);
  return ($simple{$c}, $i + 1) if exists $simple{$c};
  if ($c eq 'x' && substr($s, $i + 1, 2) =~ /^[0-9a-fA-F]{2}$/) {
    return (chr(hex(substr($s, $i + 1, 2))), $i + 3);
  }
  if ($c =~ /[0-7]/ && substr($s, $i, 3) =~ /^[0-7]{3}$/) {
    return (chr(oct(substr($s, $i, 3))), $i + 3);
  }
  if ($c eq 'u' && substr($s, $i + 1, 4) =~ /^[0-9a-fA-F]{4}$/) {
    my $cp = hex(substr($s, $i + 1, 4));
    die "\\u0000 is refused by systemd\n" if $cp == 0;
    return (encode_utf8(chr($cp)), $i + 5);
  }
  if ($c eq 'U' && substr($s, $i + 1, 8) =~ /^[0-9a-fA-F]{8}$/) {
    return (encode_utf8(chr(hex(substr($s, $i + 1, 8)))), $i + 9);
  }
  die "invalid escape \\$c\n";
}

sub encode_utf8 {
  my ($s) = @_;
  utf8::encode($s);
  return $s;
}

# words splits the line; each word is [text, quoted-anywhere].
sub words {
  my ($s) = @_;
  my @out;
  my $i = 0;
  my $n = length $s;
  while (1) {
    $i++ while $i < $n && substr($s, $i, 1) =~ /[ \t\n]/;
    last if $i >= $n;
    my ($w, $quoted, $q) = ('', 0, '');
    while ($i < $n) {
      my $c = substr($s, $i, 1);
      if ($q ne '') {
        if ($c eq $q) { $q = ''; $i++; next }
        if ($c eq '\\') { (my $u, $i) = unescape($s, $i + 1); $w .= $u; next }
        $w .= $c;
        $i++;
        next;
      }
      last if $c =~ /[ \t\n]/;
      if ($c eq '"' || $c eq "'") { $q = $c; $quoted = 1; $i++; next }
      if ($c eq '\\') { (my $u, $i) = unescape($s, $i + 1); $w .= $u; next }
      $w .= $c;
      $i++;
    }
    die "unterminated quote\n" if $q ne '';
    push @out, [$w, $quoted];
  }
  return @out;
}

# specifiers expands %% and %d, refusing the rest.
sub specifiers {
  my ($w) = @_;
  my $out = '';
  for (my $i = 0; $i < length $w; $i++) {
    my $c = substr($w, $i, 1);
    if ($c ne '%') { $out .= $c; next }
    my $s = substr($w, ++$i, 1);
    if ($s eq '%') { $out .= '%' }
    elsif ($s eq 'd') { $out .= $creds }
    else { die "unexpected specifier %$s (an unescaped %) in: $w\n" }
  }
  return $out;
}

# variables expands one argument into zero or more.
sub variables {
  my ($w) = @_;
  if ($w =~ /^\$([A-Za-z_][A-Za-z0-9_]*)$/) {
    return grep { $_ ne '' } split /[ \t\n]+/, ($env{$1} // '');
  }
  $w =~ s{\$(\$|\{([A-Za-z_][A-Za-z0-9_]*)\})}{ $1 eq '$' ? '$' : ($env{$2} // '') }ge;
  return ($w);
}

my @w = words($line);
die "empty command line\n" unless @w;
for (@w) {
  die "an unquoted ; would end the command there\n" if $_->[0] eq ';' && !$_->[1];
}
my $exe = specifiers($w[0][0]);
die "the executable starts with a systemd prefix character: $exe\n" if $exe =~ /^[-@:+!]/;
die "the executable is not an absolute path: $exe\n" unless $exe =~ m{^/};
my @argv = ($exe);
push @argv, variables(specifiers($_->[0])) for @w[1 .. $#w];
print join("\0", @argv);

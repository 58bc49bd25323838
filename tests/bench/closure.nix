# Synthetic closures for the benchmark, built with builtins only.
#  - `big`: ~200 store paths, ~800 MB of NAR made of real ELF libraries and
#    text copied from the host (the list comes from groups.json, written by
#    bench.sh), linked into a DAG of references;
#  - `many`: a closure of `manyCount` tiny paths for the no-op benchmark;
#  - `huge`: one store path holding a single file of `hugeSize` bytes.
{ groupsFile ? ./groups.json, manyCount ? 2000, hugeSize ? 1073741824, salt ? "bench-1" }:
let
  system = builtins.currentSystem;
  mk = name: attrs: script: builtins.derivation ({
    inherit system name salt;
    builder = "/bin/sh";
    PATH = "/usr/bin:/bin";
    args = [ "-c" script ];
  } // attrs);

  groups = builtins.fromJSON (builtins.readFile groupsFile);
  # Group i refers to groups i-1 and i/2: a DAG with long chains and fan-in.
  # genList memoises: each derivation is evaluated once.
  groupDrvs = builtins.genList group (builtins.length groups);
  groupAt = builtins.elemAt groupDrvs;
  group = i: mk "bench-group-${toString i}"
    {
      files = builtins.concatStringsSep "\n" (builtins.elemAt groups i);
      refs = if i == 0 then "" else "${groupAt (i - 1)} ${groupAt (i / 2)}";
    } ''
      mkdir -p $out/files
      n=0
      printf '%s\n' "$files" | while IFS= read -r f; do
        [ -n "$f" ] || continue
        n=$((n + 1))
        cp "$f" "$out/files/$n-$(basename "$f")"
      done
      echo "$refs" > $out/refs
    '';
  big = mk "bench-big" { refs = groupDrvs; } ''
    mkdir -p $out && echo "$refs" > $out/refs
  '';

  # Many tiny paths: path i refers to i-1 and i/3 (a deep, wide DAG).
  tinyDrvs = builtins.genList tiny manyCount;
  tinyAt = builtins.elemAt tinyDrvs;
  tiny = i: mk "bench-tiny-${toString i}"
    { refs = if i == 0 then "" else "${tinyAt (i - 1)} ${tinyAt (i / 3)}"; }
    ''mkdir -p $out && echo "tiny ${toString i} $refs" > $out/refs'';
  many = mk "bench-many" { refs = [ (tinyAt (manyCount - 1)) ]; } ''mkdir -p $out && echo "$refs" > $out/refs'';

  huge = mk "bench-huge" { size = toString hugeSize; } ''
    mkdir -p $out
    head -c "$size" /dev/urandom > $out/data
  '';
in
{ inherit big many huge; }

# Synthetic closures for the benchmark, built with builtins only.
#  - `big`: ~200 store paths, ~800 MB of NAR made of real ELF libraries and
#    text copied from the host (the list comes from groups.json, written by
#    bench.sh), linked into a DAG of references;
#  - `tiny100` … `tiny20000`: the closure of the Nth path of one chain of
#    `chainCount` tiny paths, each referring to the one before it (so
#    `tinyN`'s closure is exactly N paths). The chain is built 100 paths at a
#    time, as the outputs of one derivation, so that 20,000 paths take a
#    minute to build instead of 20,000 builder runs;
#  - `random1g`: one store path holding a single file of 1 GiB from
#    /dev/urandom (incompressible);
#  - `text100m`, `text1g`, `text4g`: one store path holding a single file
#    of 100 MB, 1 GiB or 4 GiB made of the `big` closure's host files
#    (ELF and text) laid end to end, repeated as often as needed:
#    compressible like real packages are.
{ groupsFile ? ./groups.json, chainCount ? 20000, salt ? "bench-1" }:
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

  # The chain: chunk k has outputs o0 … o99; o0 refers to the last output
  # of chunk k-1, every other output to the output before it.
  per = 100;
  outputNames = builtins.genList (j: "o${toString j}") per;
  last = "o${toString (per - 1)}";
  chunks = builtins.genList chunk ((chainCount + per - 1) / per);
  chunkAt = builtins.elemAt chunks;
  chunk = k: mk "bench-chain-${toString k}"
    {
      outputs = outputNames;
      prev = if k == 0 then "" else (chunkAt (k - 1)).${last};
    } ''
      prev=$prev j=0
      while [ $j -lt ${toString per} ]; do
        eval out=\$o$j
        mkdir -p $out && echo "tiny ${toString k}.$j $prev" > $out/refs
        prev=$out j=$((j + 1))
      done
    '';
  # The Nth path of the chain (1-based): its closure is N paths.
  tiny = n: assert n >= 1 && n <= chainCount;
    (chunkAt ((n - 1) / per)).${"o" + toString (n - 1 - (n - 1) / per * per)};

  random1g = mk "bench-random-1g" { } ''
    mkdir -p $out
    head -c 1073741824 /dev/urandom > $out/data
  '';
  # Host files end to end, as many passes over them as the size needs
  # (head stops the rest).
  text = name: size: mk name { inherit size; refs = groupDrvs; } ''
    mkdir -p $out
    pass() { for g in $refs; do cat $g/files/*; done; }
    { i=0; while [ $i -lt $(( size / 700000000 + 2 )) ]; do pass; i=$((i + 1)); done; } 2>/dev/null | head -c "$size" > $out/data
    [ "$(wc -c < $out/data)" = "$size" ]
  '';
in
{
  inherit big random1g;
  tiny100 = tiny 100;
  tiny1000 = tiny 1000;
  tiny2000 = tiny 2000;
  tiny3000 = tiny 3000;
  tiny10000 = tiny 10000;
  tiny20000 = tiny 20000;
  text100m = text "bench-text-100m" "100000000";
  text1g = text "bench-text-1g" "1073741824";
  text4g = text "bench-text-4g" "4294967296";
}

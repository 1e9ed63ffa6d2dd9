# STAND-IN for the handful of nixpkgs `lib` functions nixos/module.nix and
# nixos/unit-args.nix use, so that scripts/check-nix.sh can evaluate them with a
# bare `nix-instantiate` (no nixpkgs here). It mimics only what the check needs:
# mkOption keeps its attributes, mkIf keeps its condition and content, types are
# descriptors. It is NOT lib and must not be used for anything else.
let
  escapeShellArg = s: "'" + builtins.replaceStrings [ "'" ] [ "'\\''" ] (toString s) + "'";
in
{
  mkOption = attrs: attrs // { _type = "option"; };
  mkEnableOption = name: { _type = "option"; default = false; description = "Whether to enable ${name}."; type = "bool"; };
  mkIf = condition: content: { _type = "if"; inherit condition content; };
  types = {
    bool = "bool";
    str = "str";
    int = "int";
    package = "package";
    nullOr = t: "null or ${t}";
    listOf = t: "list of ${t}";
    enum = values: "one of ${builtins.concatStringsSep ", " values}";
  };
  optional = cond: x: if cond then [ x ] else [ ];
  optionals = cond: xs: if cond then xs else [ ];
  concatMap = f: xs: builtins.concatLists (map f xs);
  escapeShellArgs = xs: builtins.concatStringsSep " " (map escapeShellArg xs);
}

# NixOS VM test for services.every-channel.ec-node.archive.
#
# It CANNOT run on the development machine (no nixpkgs, no /dev/kvm there); run it
# where both exist:  nix build .#checks.x86_64-linux.archive
# What can run without nixpkgs runs in scripts/check-nix.sh.
#
# No relay is reachable inside the VM, so the workers keep reconnecting; the
# test checks the plumbing: the supervisor starts one ec-archive@ unit per
# static broadcast through polkit, the instances run hardened as ec-archive,
# archive-status sees them, and disabling the module stops every worker while
# the CAS and manifests stay.
{ self }:
{
  name = "ec-node-archive";

  nodes.machine = { lib, ... }: {
    imports = [ self.nixosModules.ec-node ];
    services.every-channel.ec-node.archive = {
      enable = true;
      directoryUrl = null;
      relayUrl = "https://relay.invalid/anon";
      broadcasts = [ "la-nbc" "ny/abc-1" ];
      outputDir = "/tank/archive";
      manifestDir = "/var/lib/every-channel/manifests";
    };
    specialisation.disabled.configuration = {
      services.every-channel.ec-node.archive.enable = lib.mkForce false;
    };
  };

  testScript = ''
    machine.wait_for_unit("ec-archive-auto.service")
    machine.wait_until_succeeds("systemctl is-active 'ec-archive@relay.invalid-anon\\x7cla\\x2dnbc.service'")
    machine.wait_until_succeeds("systemctl is-active 'ec-archive@relay.invalid-anon\\x7cny-abc\\x2d1.service'")
    machine.succeed("test \"$(systemctl show -p User --value 'ec-archive@relay.invalid-anon\\x7cla\\x2dnbc.service')\" = ec-archive")
    machine.succeed("systemd-analyze security --no-pager 'ec-archive@relay.invalid-anon\\x7cla\\x2dnbc.service' | tee /dev/stderr | grep -q 'Overall exposure level.*OK'")
    machine.wait_until_succeeds("ls /run/ec-archive/status | grep -c json | grep -q 2")
    machine.succeed("ec-node archive-status --stale 1h")

    # Restarting the supervisor must not restart the workers (they are adopted).
    pid = machine.succeed("systemctl show -p MainPID --value 'ec-archive@relay.invalid-anon\\x7cla\\x2dnbc.service'").strip()
    machine.succeed("systemctl restart ec-archive-auto.service")
    machine.sleep(5)
    assert pid == machine.succeed("systemctl show -p MainPID --value 'ec-archive@relay.invalid-anon\\x7cla\\x2dnbc.service'").strip()

    machine.succeed("touch /tank/archive/keep /var/lib/every-channel/manifests/keep")
    machine.succeed("/run/current-system/specialisation/disabled/bin/switch-to-configuration test")
    machine.wait_until_fails("systemctl list-units --state=active --no-legend 'ec-archive*' | grep -q .")
    machine.succeed("test -e /tank/archive/keep -a -e /var/lib/every-channel/manifests/keep")
  '';
}

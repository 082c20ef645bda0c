// The kernel scenarios, in the order they run. Each: {name, title, run(env), kernelOnly?, expensive?, simSpec?(spec)}
// (simSpec: the simulator's tree for this scenario, when the rig boots its guest with more devices).
import { s0Facts } from './s0-facts.mjs';
import { s1List } from './s1-list.mjs';
import { s2Detach } from './s2-detach.mjs';
import { s3Groups } from './s3-groups.mjs';
import { s4Qemu } from './s4-qemu.mjs';
import { s5SeedBlocked } from './s5-seed-blocked.mjs';
import { s6Nested } from './s6-nested.mjs';
import { s7Crash } from './s7-crash.mjs';
import { s8BlockedRelease } from './s8-blocked-release.mjs';
import { s9Timing } from './s9-timing.mjs';
import { s10Hotplug } from './s10-hotplug.mjs';
import { s11Daemon } from './s11-daemon.mjs';
import { s12Claims } from './s12-claims.mjs';
import { s13ClaimsReboot, s14ClaimsRebooted } from './s13-claims-reboot.mjs';
import { s15NestedHotplug } from './s15-nested-hotplug.mjs';
import { s16HolderKill } from './s16-holder-kill.mjs';
import { s17Mtty } from './s17-mtty.mjs';
import { s18Usb } from './s18-usb.mjs';
import { s19Nvme } from './s19-nvme.mjs';
import { s20NvmeCrash } from './s20-nvme-crash.mjs';

export const scenarios = [s0Facts, s1List, s2Detach, s3Groups, s4Qemu, s5SeedBlocked, s6Nested, s7Crash, s8BlockedRelease, s9Timing, s10Hotplug, s11Daemon, s12Claims, s13ClaimsReboot, s14ClaimsRebooted, s15NestedHotplug, s16HolderKill, s17Mtty, s18Usb, s19Nvme, s20NvmeCrash];

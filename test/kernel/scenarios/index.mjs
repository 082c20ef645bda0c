// The kernel scenarios, in the order they run. Each: {name, title, run(env), kernelOnly?, expensive?}.
import { s0Facts } from './s0-facts.mjs';
import { s1List } from './s1-list.mjs';

export const scenarios = [s0Facts, s1List];

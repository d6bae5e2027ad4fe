import { defineConfig } from 'vitest/config';

const packages = [
  'protocol',
  'algorithms',
  'firmware-ota',
  'device-drivers',
  'simulators',
  'edge-agent',
  'cloud-hub',
  'cli',
  'console',
];

export default defineConfig({
  test: {
    // Most suites wait on sockets, child processes and timers, not on the CPU: two forks overlap
    // that waiting on the 2-core CI machine, where Vitest's default (cores − 1) runs files one by one.
    maxWorkers: 2,
    minWorkers: 1,
    projects: packages.map((name) => ({
      test: {
        name,
        root: `./${name}`,
        include: ['**/*.test.ts'],
        testTimeout: 60_000,
        hookTimeout: 60_000,
        pool: 'forks',
      },
    })),
  },
});

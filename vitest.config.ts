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
];

export default defineConfig({
  test: {
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

import { defineConfig } from 'vitest/config';

/** The real-cluster suite (`npm run test:k8s`): etcd, kube-apiserver, containerd and a kubelet on loopback. */
export default defineConfig({
  test: {
    include: ['test/k8s-cluster/**/*.k8s.ts'],
    globalSetup: ['./test/support/global-setup.ts'],
    reporters: ['default', './test/support/count-reporter.ts'],
    testTimeout: 180_000,
    hookTimeout: 300_000,
    pool: 'forks',
    fileParallelism: false,
  },
});

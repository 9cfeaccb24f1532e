// Validate rendered custom resources with the validators the @kubernetes-models packages publish on npm.
// Run by npm_crosscheck.py (cwd = a scratch dir where those packages are installed); argv[2] = manifests JSON.
// Prints one JSON line per manifest: {"kind", "name", "package", "ok", "error"}.
import fs from "node:fs";

const PACKAGES = {
  "argoproj.io/v1alpha1": "@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1",
  "keda.sh/v1alpha1": "@kubernetes-models/keda/keda.sh/v1alpha1",
  "gateway.networking.k8s.io/v1": "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1",
  "gateway.envoyproxy.io/v1alpha1": "@kubernetes-models/envoy-gateway/gateway.envoyproxy.io/v1alpha1",
  "monitoring.coreos.com/v1": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1",
};

for (const m of JSON.parse(fs.readFileSync(process.argv[2], "utf8"))) {
  const base = PACKAGES[m.apiVersion];
  const out = { kind: m.kind, name: m.metadata?.name, package: base ?? null, ok: null, error: null };
  if (base) {
    try {
      const cls = (await import(`${base}/${m.kind}`))[m.kind];
      new cls(m).validate();
      out.ok = true;
    } catch (e) {
      out.ok = false;
      out.error = e.message;
    }
  }
  console.log(JSON.stringify(out));
}

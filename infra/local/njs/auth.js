// API-key hashing for the nginx gateway (njs). The config holds only SHA-256 hashes of the keys
// (rendered from the local secret store); this hashes the presented key so nginx can compare hashes.
// No key is ever written to the config, the access log or the error log.

function key_hash(r) {
    var key = r.headersIn['X-API-Key'];
    if (!key) {
        return '';
    }
    return require('crypto').createHash('sha256').update(key).digest('hex');
}

export default { key_hash };

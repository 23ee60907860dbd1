//! The maps a living collection learns from its own data: per-space normalisers and the
//! adapters between spaces.

use super::*;

impl LivingCollection {
    /// Fits a normaliser for `space` on `sample_size` of its stored vectors and re-writes
    /// every stored vector through it; later writes and queries go through it too.
    /// Only for a space that has none yet.
    pub fn fit_normalizer(
        &self,
        space: &str,
        mode: NormalizeMode,
        sample_size: usize,
    ) -> Result<NormalizerEntry> {
        let space = self.state.read().space(space)?.clone();
        if space.normalizer.is_some() {
            return Err(invalid(format!(
                "space `{}` already has a normaliser",
                space.name
            )));
        }
        if self.job_running() {
            return Err(invalid("a migration is running; pause it first"));
        }
        let collection = self.engine.collection(&space.collection)?;
        let (_, sample) = sample_vectors(&collection, sample_size.max(2))?;
        let normalizer = Normalizer::fit(&sample, space.dim, mode)?;
        let file = format!("normalizer-{}.bin", file_slug(&space.name));
        normalizer.save(&self.dir.join(&file))?;
        // Re-write every stored vector.
        for_each_page(&collection, true, |page| {
            let rewrites: Vec<NewPoint> = page
                .iter()
                .map(|p| NewPoint {
                    vector: normalizer.map(&p.vector),
                    ..renew(p.clone(), Payload::new())
                })
                .collect();
            collection.upsert(rewrites)?;
            Ok(())
        })?;
        let entry = NormalizerEntry {
            file,
            mode,
            sample: sample.len() / space.dim,
        };
        let _guard = self.state_write.lock();
        self.update_state(|s| {
            // The space may have been removed while its vectors were re-written.
            s.space(&space.name)?;
            if let Some(sp) = s.spaces.iter_mut().find(|x| x.name == space.name) {
                sp.normalizer = Some(entry.clone());
            }
            Ok(())
        })?;
        self.normalizers
            .lock()
            .insert(space.name.clone(), Arc::new(normalizer));
        Ok(entry)
    }

    /// Fits adapters between two spaces from calibration pairs: points both spaces hold,
    /// topped up (when `from` lacks enough of them and the collection keeps text) by
    /// encoding up to `pairs` of the highest-priority points' text into `to` (those
    /// vectors are also written to `to`). Fits both directions (`to → from` serves
    /// queries during a migration, `from → to` gives provisional vectors to points
    /// without text) and stores them.
    pub fn fit_adapters(
        &self,
        from: &str,
        to: &str,
        kind: AdapterKind,
        pairs: usize,
    ) -> Result<(AdapterEntry, AdapterEntry)> {
        if from == to {
            return Err(invalid("an adapter needs two different spaces"));
        }
        if pairs < 2 {
            return Err(invalid(format!("pairs must be at least 2, got {pairs}")));
        }
        let (from_space, to_space) = {
            let state = self.state.read();
            (state.space(from)?.clone(), state.space(to)?.clone())
        };
        let (source, target) = migrate::calibration_pairs(self, &from_space, &to_space, pairs)?;
        let n = source.len() / from_space.dim;
        if n < 2 {
            return Err(invalid(format!(
                "only {n} calibration pairs found between `{from}` and `{to}`: write vectors \
                 into both spaces, or keep text (text_field) so `{to}` can encode it"
            )));
        }
        let forward = Adapter::fit(kind, &source, from_space.dim, &target, to_space.dim, 17)?;
        let backward = Adapter::fit(kind, &target, to_space.dim, &source, from_space.dim, 18)?;
        let _guard = self.state_write.lock();
        // Either space may have been removed while the fit ran: store nothing then.
        {
            let state = self.state.read();
            state.space(from)?;
            state.space(to)?;
        }
        let entries = [
            self.store_adapter(&from_space.name, &to_space.name, kind, forward)?,
            self.store_adapter(&to_space.name, &from_space.name, kind, backward)?,
        ];
        self.update_state(|s| {
            s.adapters.extend(entries.iter().cloned());
            Ok(())
        })?;
        let [forward, backward] = entries;
        Ok((forward, backward))
    }

    fn store_adapter(
        &self,
        from: &str,
        to: &str,
        kind: AdapterKind,
        adapter: Adapter,
    ) -> Result<AdapterEntry> {
        let version = self
            .state
            .read()
            .adapter(from, to)
            .map(|a| a.version + 1)
            .unwrap_or(1);
        let file = format!(
            "adapter-{}-to-{}-v{version}.bin",
            file_slug(from),
            file_slug(to)
        );
        adapter.save(&self.dir.join(&file))?;
        let entry = AdapterEntry {
            from: from.to_string(),
            to: to.to_string(),
            version,
            kind,
            file,
            fit: adapter.fit_report().clone(),
            created_at: now_millis(),
        };
        let mut adapters = self.adapters.lock();
        adapters.remove(&format!("adjoint:{}", adapter_key(from, to)));
        adapters.insert(adapter_key(from, to), Arc::new(adapter));
        Ok(entry)
    }

    /// The newest adapter mapping `from` into `to`, loaded once.
    pub(crate) fn adapter(&self, from: &str, to: &str) -> Result<Option<Arc<Adapter>>> {
        let key = adapter_key(from, to);
        if let Some(a) = self.adapters.lock().get(&key) {
            return Ok(Some(a.clone()));
        }
        let Some(entry) = self.state.read().adapter(from, to).cloned() else {
            return Ok(None);
        };
        let adapter = Arc::new(Adapter::load(&self.dir.join(&entry.file))?);
        self.adapters.lock().insert(key, adapter.clone());
        Ok(Some(adapter))
    }

    /// The map a query of `space` takes into `old`: the adjoint of the newest linear
    /// adapter `old → space` (it scores each stored vector by the forward fit's estimate
    /// of its `space` vector; measured better than a fit in the other direction, which
    /// shrinks toward the mean), else the newest adapter `space → old`.
    pub(crate) fn query_adapter(&self, space: &str, old: &str) -> Result<Option<Arc<Adapter>>> {
        let key = format!("adjoint:{}", adapter_key(old, space));
        if let Some(a) = self.adapters.lock().get(&key) {
            return Ok(Some(a.clone()));
        }
        if let Some(forward) = self.adapter(old, space)? {
            if let Ok(adjoint) = forward.adjoint() {
                let adjoint = Arc::new(adjoint);
                self.adapters.lock().insert(key, adjoint.clone());
                return Ok(Some(adjoint));
            }
        }
        self.adapter(space, old)
    }

    pub(crate) fn encoder(&self, space: &SpaceState) -> Result<Arc<dyn Encoder>> {
        let Some(info) = &space.encoder else {
            return Err(invalid(format!(
                "space `{}` has no encoder: pass vectors, not text",
                space.name
            )));
        };
        // The info check keeps an encoder of a removed space from serving a new space
        // of the same name.
        if let Some(e) = self.encoders.lock().get(&space.name) {
            if e.info() == info {
                return Ok(e.clone());
            }
        }
        let encoder = encoder_from_info(info)?;
        self.encoders
            .lock()
            .insert(space.name.clone(), encoder.clone());
        Ok(encoder)
    }
}

//! Writes to a living collection: texts encoded into every space, vectors into one,
//! deletes and payload updates reaching every space.

use super::*;

impl LivingCollection {
    /// Writes points with raw text: each text is encoded in every space that has an
    /// encoder and written there (with the same payload). The text is stored in the
    /// payload's text field when the collection has one.
    pub fn upsert_texts(&self, points: Vec<(PointId, String, Payload)>) -> Result<usize> {
        if points.is_empty() {
            return Ok(0);
        }
        if points.len() > MAX_WRITE_BATCH {
            return Err(invalid(format!(
                "{} texts in one write; at most {MAX_WRITE_BATCH}",
                points.len()
            )));
        }
        let (spaces, text_field) = {
            let state = self.state.read();
            (state.spaces.clone(), state.text_field.clone())
        };
        let encoded: Vec<_> = spaces.iter().filter(|s| s.encoder.is_some()).collect();
        if encoded.is_empty() {
            return Err(invalid(format!(
                "collection `{}` has no space with an encoder; write vectors instead",
                self.name
            )));
        }
        let texts: Vec<&str> = points.iter().map(|(_, t, _)| t.as_str()).collect();
        let mut per_space = Vec::with_capacity(encoded.len());
        for space in &encoded {
            per_space.push(self.encode_into(space, &texts)?);
        }
        let payloads: Vec<Payload> = points
            .iter()
            .map(|(_, text, payload)| {
                let mut payload = payload.clone();
                if let Some(field) = &text_field {
                    payload.insert(field.clone(), serde_json::Value::String(text.clone()));
                }
                payload
            })
            .collect();
        for (space, vectors) in encoded.iter().zip(per_space) {
            let new_points = points
                .iter()
                .zip(&payloads)
                .zip(vectors.chunks_exact(space.dim))
                .map(|(((id, _, _), payload), v)| {
                    encoded_point(id.clone(), v.to_vec(), payload.clone(), space, "write")
                })
                .collect::<Vec<_>>();
            self.recent.record(&space.name, &vectors, space.dim);
            self.space_collection(&space.name)?.upsert(new_points)?;
        }
        Ok(points.len())
    }

    /// Writes vectors of one space. Writing the first space also keeps the payloads of
    /// the other spaces' copies of those points in step.
    pub fn upsert_vectors(&self, space: &str, mut points: Vec<NewPoint>) -> Result<usize> {
        let space = self.state.read().space(space)?.clone();
        if let Some(normalizer) = self.normalizer(&space)? {
            for p in &mut points {
                check_len(&p.vector, space.dim, &space.name)?;
                p.vector = normalizer.map(&p.vector);
            }
        }
        for p in &mut points {
            if p.encoder_version.is_none() {
                p.encoder_version = Some(space.name.clone());
            }
            self.recent.record(&space.name, &p.vector, space.dim);
        }
        let n = points.len();
        let updates: Vec<(PointId, Payload)> = points
            .iter()
            .map(|p| (p.id.clone(), p.payload.clone()))
            .collect();
        self.space_collection(&space.name)?.upsert(points)?;
        if space.collection == self.name {
            self.sync_payloads(&updates)?;
        }
        Ok(n)
    }

    /// Re-writes the copies other spaces hold of these points with the given payloads.
    fn sync_payloads(&self, updates: &[(PointId, Payload)]) -> Result<()> {
        let others: Vec<SpaceState> = self.state.read().spaces[1..].to_vec();
        let ids: Vec<PointId> = updates.iter().map(|(id, _)| id.clone()).collect();
        for space in others {
            let collection = self.engine.collection(&space.collection)?;
            let rewrites: Vec<NewPoint> = collection
                .get(&ids)?
                .into_iter()
                .zip(updates)
                .filter_map(|(found, (_, payload))| {
                    let point = found?;
                    (point.payload != *payload).then(|| renew(point, payload.clone()))
                })
                .collect();
            if !rewrites.is_empty() {
                collection.upsert(rewrites)?;
            }
        }
        Ok(())
    }

    /// Deletes points from every space.
    pub fn delete(&self, ids: &[PointId]) -> Result<usize> {
        let spaces = self.spaces();
        let mut deleted = 0;
        // Companions first: a crash in between leaves the first space holding the point,
        // and the next migration re-creates what is missing.
        for space in spaces.iter().rev() {
            let n = self
                .engine
                .collection(&space.collection)?
                .delete(ids)?
                .count;
            if space.collection == self.name {
                deleted = n;
            }
        }
        let mut access = self.access.lock();
        for id in ids {
            access.remove(id);
        }
        Ok(deleted)
    }

    /// Reads points from one space.
    pub fn get(&self, space: &str, ids: &[PointId]) -> Result<Vec<Option<Point>>> {
        Ok(self.space_collection(space)?.get(ids)?)
    }

    /// Encodes texts with `space`'s encoder (and normaliser).
    pub fn encode(&self, space: &str, texts: &[&str]) -> Result<Vec<f32>> {
        let space = self.state.read().space(space)?.clone();
        self.encode_into(&space, texts)
    }

    pub(super) fn encode_into(&self, space: &SpaceState, texts: &[&str]) -> Result<Vec<f32>> {
        let encoder = self.encoder(space)?;
        let mut vectors = encoder.encode_texts(texts)?;
        if vectors.len() != texts.len() * space.dim {
            return Err(LifecycleError::Model(format!(
                "encoder of space `{}` returned {} values for {} texts of dim {}",
                space.name,
                vectors.len(),
                texts.len(),
                space.dim
            )));
        }
        if let Some(normalizer) = self.normalizer(space)? {
            vectors = normalizer.map_batch(&vectors);
        }
        Ok(vectors)
    }
}

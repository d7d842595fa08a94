//! A live broker: its management API (and AMQP, where the plan gives a URL).

use super::{BrokerApi, Definition, Depth, Management, Shovel};
use crate::discovery::ResolvedBroker;
use crate::error::{Error, Result};
use crate::model::{Broker, Link};

/// A real broker, reached through the URLs the plan's variables hold.
#[derive(Debug)]
pub struct Live {
    management: Management,
    alias: String,
    id: String,
}

impl Live {
    /// The live broker `broker`, once its URLs are known to be its own.
    ///
    /// # Errors
    /// As [`Management::for_broker`] and [`super::check_amqp_url`].
    pub fn for_broker(broker: &ResolvedBroker) -> Result<Live> {
        let management = Management::for_broker(broker)?;
        super::check_amqp_url(broker, Some(management.host()))?;
        Ok(Live {
            management,
            alias: broker.alias.to_string(),
            id: broker.id.clone(),
        })
    }
}

/// The live brokers a run has reached, each checked once and kept for the calls after.
#[derive(Debug, Default)]
pub struct LiveBrokers {
    reached: Vec<Live>,
}

impl LiveBrokers {
    /// The live broker `broker`, reached on first use.
    ///
    /// # Errors
    /// As [`Live::for_broker`].
    pub fn get(&mut self, broker: &ResolvedBroker) -> Result<&mut Live> {
        let alias = broker.alias.to_string();
        match self
            .reached
            .iter()
            .position(|l| l.id == broker.id && l.alias == alias)
        {
            Some(i) => Ok(&mut self.reached[i]),
            None => {
                self.reached.push(Live::for_broker(broker)?);
                Ok(self.reached.last_mut().expect("just pushed"))
            }
        }
    }
}

impl BrokerApi for Live {
    fn describe(&self) -> String {
        format!(
            "the {} broker {} ({})",
            self.alias,
            self.id,
            self.management.shown()
        )
    }

    fn read_into(&mut self, broker: &mut Broker) -> Result<()> {
        self.management.read_into(broker)
    }

    fn depth(&mut self, vhost: &str, queue: &str) -> Result<Option<Depth>> {
        Ok(self.management.queue(vhost, queue)?.map(|q| Depth {
            ready: q.messages.saturating_sub(q.unacked),
            unacked: q.unacked,
            consumers: q.consumers,
        }))
    }

    fn create(&mut self, definition: &Definition) -> Result<()> {
        Err(Error::Backend(format!(
            "{}: cannot create {definition}",
            self.describe()
        )))
    }

    fn start_shovel(&mut self, shovel: &Shovel<'_>) -> Result<()> {
        Err(Error::Backend(format!(
            "{}: cannot start shovel {}",
            self.describe(),
            shovel.name
        )))
    }

    fn links(&mut self) -> Result<Vec<Link>> {
        Ok(Vec::new())
    }
}
